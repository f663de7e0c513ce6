//! Fuzz target bodies, shared by the libFuzzer binaries (`fuzz_targets/`,
//! run by `tests/fuzz/run.sh`) and the bounded smoke run in the `it` test
//! binary (`tests/it/auth_fuzz.rs`, which includes this file by path).
//!
//! Each function takes arbitrary bytes and must return normally: a panic,
//! an abort, a hang or an out-of-memory is a finding. Beyond "does not
//! crash", each states a property of its parser (round trips, bounds).

use labelhub::auth::key::Presented;
use labelhub::brother::status;
use labelhub::http::front::{parse_head, FrontConfig};

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

/// The Brother raster decoder (strict, and the partial mode the CLI uses
/// for damaged streams). Property: a decoded page is as wide as its raster
/// lines and as tall as the head's pins, and the partial decoder never
/// decodes less than the strict one.
pub fn raster_decode(data: &[u8]) {
    use labelhub::brother::decode;
    let strict = decode::decode(data);
    let partial = decode::decode_partial(data, None);
    if let Ok(stream) = &strict {
        let partial = partial
            .as_ref()
            .expect("what decodes strictly decodes partially");
        assert!(partial.pages.len() >= stream.pages.len());
        for page in &stream.pages {
            if let Some(red) = &page.red {
                assert_eq!(red.width(), page.wire.width());
                assert_eq!(red.height(), page.wire.height());
            }
        }
    }
}

/// The image upload path: bytes of an uploaded file (PNG, JPEG or anything
/// else) as the API receives them, base64 in `data.image`, rendered for one
/// of several media. The first byte picks the medium and options. Property:
/// a rendered page is exactly as tall as the medium's printable dots, and a
/// red layer has the black layer's size.
pub fn image_upload(data: &[u8]) {
    use labelhub::render::{render, ContentType, LabelData, Target};
    let Some((&sel, file)) = data.split_first() else {
        return;
    };
    let targets = [
        ("PT-P750W", "12"),
        ("PT-P750W", "24"),
        ("QL-820NWB", "62"),
        ("QL-820NWB", "62red"),
        ("QL-820NWB", "29x90"),
    ];
    let (model, media) = targets[usize::from(sel) % targets.len()];
    let label: LabelData = serde_json::from_value(serde_json::json!({
        "image": labelhub::base64::encode(file),
        "image_mode": if sel & 0x08 != 0 { "dither" } else { "threshold" },
        "threshold": (sel >> 4).max(1) * 15,
        "red": if sel & 0x40 != 0 { vec!["image"] } else { vec![] },
        "split_red": sel & 0x80 != 0,
    }))
    .expect("a well-formed LabelData");
    let target = Target::lookup(model, media).expect("a known medium");
    if let Ok(page) = render(ContentType::Image, &label, &target) {
        assert_eq!(page.black.height(), target.geometry.printable_dots);
        if let Some(red) = &page.red {
            assert_eq!(
                (red.width(), red.height()),
                (page.black.width(), page.black.height())
            );
        }
    }
}

/// The API's request bodies: print, batch, preview, printer create/update,
/// and the label data inside them, rendered as the submit path would.
pub fn request_json(data: &[u8]) {
    use labelhub::api::admin::{CreatePrinter, UpdatePrinter};
    use labelhub::api::print::{BatchRequest, PreviewRequest, PrintRequest};
    use labelhub::render::{render, ContentType, LabelData, Target};
    let _ = serde_json::from_slice::<PrintRequest>(data);
    let _ = serde_json::from_slice::<BatchRequest>(data);
    let _ = serde_json::from_slice::<PreviewRequest>(data);
    let _ = serde_json::from_slice::<CreatePrinter>(data);
    let _ = serde_json::from_slice::<UpdatePrinter>(data);
    let depth = labelhub::auth::limits::json_depth(data);
    if let Ok(label) = serde_json::from_slice::<LabelData>(data) {
        assert!(depth <= 128, "serde_json's own limit");
        let target = Target::lookup("PT-P750W", "12").expect("a known medium");
        for ct in ContentType::ALL {
            if ct != ContentType::Image {
                if let Ok(page) = render(ct, &label, &target) {
                    assert_eq!(page.black.height(), target.geometry.printable_dots);
                }
            }
        }
    }
}
