#![no_main]
//! libFuzzer entry for `labelhub_fuzz::raster_decode`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| labelhub_fuzz::raster_decode(data));
