#![no_main]
//! libFuzzer entry for `labelhub_fuzz::image_upload`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| labelhub_fuzz::image_upload(data));
