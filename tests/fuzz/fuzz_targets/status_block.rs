#![no_main]
//! libFuzzer entry for `labelhub_fuzz::status_block`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| labelhub_fuzz::status_block(data));
