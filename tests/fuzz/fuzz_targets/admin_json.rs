#![no_main]
//! libFuzzer entry for `labelhub_fuzz::admin_json`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| labelhub_fuzz::admin_json(data));
