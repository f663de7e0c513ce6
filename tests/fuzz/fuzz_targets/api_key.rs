#![no_main]
//! libFuzzer entry for `labelhub_fuzz::api_key`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| labelhub_fuzz::api_key(data));
