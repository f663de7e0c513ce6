//! Bounded, seeded fuzzing of the same target bodies that `tests/fuzz/`
//! runs under libFuzzer, so that every `cargo test` exercises them on the
//! stable toolchain without cargo-fuzz. A deterministic mutator (bit flips,
//! interesting bytes, inserts, deletes, duplication, dictionary tokens,
//! crossover) grows inputs from the seed files in `tests/fuzz/seeds/<target>`.
//! A panic in a target fails the test and prints the input in hex.

#![allow(clippy::unwrap_used)]

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use crate::support::Rng;

/// Inputs per target in the smoke run.
const RUNS: usize = 20_000;

const INTERESTING: &[u8] = b"\x00\xff\x7f\x80\r\n:; \t\"{}[],0-9.eE+%/?=&\\";
const DICT: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"Expect: 100-continue",
    b"HTTP/1.1",
    b"lh_pat_",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"[[[[[[[[",
    b"{\"a\":",
    b"\x80\x20\x42",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                v.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 => {
                let at = rng.below(len + 1);
                let tok = DICT[rng.below(DICT.len())];
                v.splice(at..at, tok.iter().copied());
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    v.splice(at..at, other[a..b].iter().copied());
                }
            }
        }
    }
    v.truncate(64 * 1024);
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/seeds")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out.push(Vec::new());
    out
}

/// Runs `target` on the seeds and `RUNS` mutants. Without coverage feedback,
/// every 16th mutant is kept as a base for further mutation, so inputs drift
/// further from the seeds as the run goes on.
fn run(name: &str, target: fn(&[u8]), seed: u64) {
    let mut corpus = seeds(name);
    let originals = corpus.clone();
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let mut execs = 0usize;
    let mut check = |input: &[u8]| {
        execs += 1;
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            panic!("fuzz target {name} panicked on input (hex) {hex}");
        }
    };
    for s in &originals {
        check(s);
    }
    for i in 0..RUNS {
        let base = corpus[rng.below(corpus.len())].clone();
        let input = mutate(&mut rng, &base, &originals);
        check(&input);
        if i % 16 == 0 && corpus.len() < 256 {
            corpus.push(input);
        }
    }
    eprintln!(
        "fuzz smoke {name}: {execs} executions in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_smoke_http_head() {
    run("http_head", targets::http_head, 0x5eed_0001);
}

#[test]
fn fuzz_smoke_api_key() {
    run("api_key", targets::api_key, 0x5eed_0002);
}

#[test]
fn fuzz_smoke_admin_json() {
    run("admin_json", targets::admin_json, 0x5eed_0003);
}

#[test]
fn fuzz_smoke_status_block() {
    run("status_block", targets::status_block, 0x5eed_0004);
}

#[test]
fn fuzz_smoke_raster_decode() {
    run("raster_decode", targets::raster_decode, 0x5eed_0005);
}

#[test]
fn fuzz_smoke_image_upload() {
    run("image_upload", targets::image_upload, 0x5eed_0006);
}

#[test]
fn fuzz_smoke_request_json() {
    run("request_json", targets::request_json, 0x5eed_0007);
}

#[test]
fn the_mutator_changes_inputs_and_stays_bounded() {
    let mut rng = Rng(1);
    let seeds = vec![b"GET / HTTP/1.1".to_vec()];
    let mut changed = 0;
    for _ in 0..1000 {
        let out = mutate(&mut rng, &seeds[0], &seeds);
        assert!(out.len() <= 64 * 1024);
        changed += usize::from(out != seeds[0]);
    }
    assert!(changed > 900, "{changed}");
}
