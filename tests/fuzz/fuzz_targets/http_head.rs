#![no_main]
//! libFuzzer entry for `labelhub_fuzz::http_head`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| labelhub_fuzz::http_head(data));
