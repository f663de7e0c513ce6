//! Fuzz target bodies, shared by the libFuzzer binaries (`fuzz_targets/`,
//! run by `tests/fuzz/run.sh`) and the bounded smoke run in the `it` test
//! binary (`tests/it/auth_fuzz.rs`, which includes this file by path).
//!
//! Each function takes arbitrary bytes and must return normally: a panic,
//! an abort, a hang or an out-of-memory is a finding. Beyond "does not
//! crash", each states a property of its parser (round trips, bounds).

use labelhub::auth::front::{parse_head, FrontConfig};
use labelhub::auth::key::Presented;
use labelhub::brother::status;

/// The hardened HTTP head parser of the front door. Property: an accepted
/// head re-serialises to a head that parses to the same thing, and never
/// carries a line break inside a name or value (no header injection).
pub fn http_head(data: &[u8]) {
    let cfg = FrontConfig::default();
    let Ok(head) = parse_head(data, &cfg) else {
        return;
    };
    for (name, value) in &head.headers {
        assert!(!name.contains(['\r', '\n']) && !value.contains(['\r', '\n']));
    }
    let mut again = format!("{} {} {}", head.method, head.target, head.version);
    for (name, value) in &head.headers {
        again.push_str(&format!("\r\n{name}: {value}"));
    }
    let reparsed = parse_head(again.as_bytes(), &cfg).expect("a re-serialised head parses");
    assert_eq!(reparsed.method, head.method);
    assert_eq!(reparsed.target, head.target);
    assert_eq!(reparsed.headers, head.headers);
}

/// `X-Label-Hub-Key` values. Property: only 50-character `lh_pat_` keys are
/// accepted, and the lookup prefix is their first 16 characters.
pub fn api_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(p) = Presented::parse(text) {
        assert_eq!(text.len(), 50);
        assert_eq!(p.prefix(), &text[..16]);
    }
}

/// The admin API's request bodies and query strings: JSON of any shape into
/// the typed requests, then the validation they go through.
pub fn admin_json(data: &[u8]) {
    use labelhub::auth::admin::{audit_query, CreateRequest, PatchRequest};
    let _ = serde_json::from_slice::<CreateRequest>(data);
    let _ = serde_json::from_slice::<PatchRequest>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let pairs: Vec<(String, String)> = text
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let _ = audit_query(&pairs);
    }
}

/// One 32-byte printer status block. Property: an accepted block encodes
/// back to a block that parses to the same status.
pub fn status_block(data: &[u8]) {
    if let Ok(st) = status::parse(data) {
        let again = status::parse(&st.encode()).expect("an encoded status parses");
        assert_eq!(again, st);
    }
    // A USB read of arbitrary bytes: the last complete block, if any.
    if let Some((_, end)) = status::find_last(data) {
        assert!(end <= data.len() && end >= status::BLOCK_LEN);
    }
}
