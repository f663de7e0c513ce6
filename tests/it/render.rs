//! Renderer tests through the public API (`labelhub::render`) and the
//! `labelhub render` binary: every code decodes back on every medium with an
//! independent decoder (rqrr for QR, rxing for Code 128 / EAN-13 / Data
//! Matrix), every content type fits every medium or is refused with a named
//! reason, snapshots of each content type on small/medium/large media, and
//! the input boundaries.
//!
//! Snapshots live in `tests/data/render/*.png` and are only rewritten when
//! the test runs with `BLESS=1`; a mismatch writes the new rendering to
//! `target/render-snapshots/` and fails.

// Test helpers may unwrap (COMMON.md); clippy only exempts `#[test]` bodies.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use labelhub::bitmap::Bitmap;
use labelhub::brother::{encode, media, model};
use labelhub::render::{
    self, BarcodeType, ContentType, ImageMode, LabelData, Page, RenderError, Target,
};

/// One target per distinct geometry over every model × medium pair the
/// tables allow (many models share a head, so their pages are identical).
fn every_medium() -> Vec<(String, Target)> {
    let mut seen = HashSet::new();
    let mut res = Vec::new();
    for m in model::all() {
        for md in media::all() {
            let Ok(target) = Target::lookup(m.name, md.id) else {
                continue;
            };
            if seen.insert(format!("{:?}", target.dims())) {
                res.push((format!("{} {}", m.name, md.id), target));
            }
        }
    }
    res
}

fn target(model: &str, media: &str) -> Target {
    Target::lookup(model, media).unwrap()
}

fn sample() -> LabelData {
    LabelData {
        qr_payload: Some("https://inventory.example.org/item/A-1042".into()),
        primary_id: Some("A-1042".into()),
        title: Some("Cable box, USB-C".into()),
        secondary: vec!["Shelf 3 / bin 12".into()],
        items: vec![
            "HDMI cable 2 m".into(),
            "USB-C charger".into(),
            "Mouse".into(),
            "Keyboard".into(),
            "DP adapter".into(),
            "Batteries".into(),
            "Screws M3".into(),
        ],
        barcode: Some("A-1042/2024".into()),
        ..LabelData::default()
    }
}

/// Grey pixels of the page (ink = 0), enlarged `k` times, with a `border`
/// of paper (the blank tape outside the printable area).
fn luma(bmp: &Bitmap, k: u32, border: u32) -> (Vec<u8>, u32, u32) {
    let (w, h) = (bmp.width() * k + 2 * border, bmp.height() * k + 2 * border);
    let mut px = vec![255u8; (w * h) as usize];
    for y in 0..bmp.height() * k {
        for x in 0..bmp.width() * k {
            if bmp.get(x / k, y / k) {
                px[((y + border) * w + x + border) as usize] = 0;
            }
        }
    }
    (px, w, h)
}

/// Enlargement that gives the decoders a few pixels per dot on tiny media.
fn zoom(bmp: &Bitmap) -> u32 {
    (240 / bmp.height()).clamp(1, 4)
}

/// The part of a label that holds its code: from the first inked column
/// (row, for labels turned a quarter) one label-height on, plus a margin.
fn code_region(bmp: &Bitmap) -> Bitmap {
    let turned = bmp.width() < bmp.height();
    let src = if turned { bmp.transpose() } else { bmp.clone() };
    let (w, h) = (src.width(), src.height());
    let first = (0..w).find(|&x| (0..h).any(|y| src.get(x, y))).unwrap_or(0);
    let (x0, x1) = (first.saturating_sub(8), (first + h + 8).min(w));
    let mut res = Bitmap::new(x1 - x0, h);
    for y in 0..h {
        for x in x0..x1 {
            if src.get(x, y) {
                res.set(x - x0, y, true);
            }
        }
    }
    if turned {
        res.transpose()
    } else {
        res
    }
}

fn decode_qr(bmp: &Bitmap) -> Vec<String> {
    let bmp = &code_region(bmp);
    let k = zoom(bmp);
    let (px, w, h) = luma(bmp, k, 8 * k);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
        px[y * w as usize + x]
    });
    img.detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

fn decode_rxing(bmp: &Bitmap, format: rxing::BarcodeFormat) -> Option<String> {
    let k = zoom(bmp);
    // Die-cut labels wider than long are turned a quarter: try both ways.
    for candidate in [bmp.clone(), bmp.transpose()] {
        let (px, w, h) = luma(&candidate, k, 8 * k);
        if let Ok(res) = rxing::helpers::detect_in_luma(px, w, h, Some(format)) {
            return Some(res.getText().to_string());
        }
    }
    None
}

/// Media where a code legitimately cannot be drawn (too few dots for the
/// smallest symbol plus quiet zone with whole-dot modules, or no room for
/// the line of text beside it).
fn allowed_refusal(err: &RenderError) -> bool {
    matches!(
        err.code(),
        "code_does_not_fit" | "text_does_not_fit" | "payload_too_large"
    )
}

#[test]
fn every_qr_decodes_on_every_medium() {
    let data = sample();
    let mut rendered = 0;
    for (name, t) in every_medium() {
        match render::render(ContentType::QrOnly, &data, &t) {
            Ok(page) => {
                rendered += 1;
                let got = decode_qr(&page.black);
                assert_eq!(got, [data.qr_payload.clone().unwrap()], "{name}");
            }
            Err(e) => {
                assert!(allowed_refusal(&e), "{name}: {e}");
                assert!(t.geometry.media.width_mm < 10.0, "{name}: {e}");
            }
        }
        // A short payload fits everything but 3.5 mm tape.
        let short = LabelData {
            qr_payload: Some("A-1042".into()),
            ..LabelData::default()
        };
        match render::render(ContentType::QrOnly, &short, &t) {
            Ok(page) => assert_eq!(decode_qr(&page.black), ["A-1042"], "{name}"),
            Err(e) => {
                // Only 3.5 mm tape: 21 + 4 modules of at least 0.125 mm.
                assert_eq!(e.code(), "code_does_not_fit", "{name}");
                assert!(t.geometry.media.width_mm < 4.0, "{name}: {e}");
            }
        }
        // With text beside it too (the cell may be smaller on die-cut).
        if let Ok(page) = render::render(ContentType::QrTwoLines, &data, &t) {
            let got = decode_qr(&page.black);
            assert_eq!(
                got,
                [data.qr_payload.clone().unwrap()],
                "{name} qr_two_lines"
            );
        }
    }
    assert!(rendered > 30, "only {rendered} media rendered");
}

#[test]
fn every_barcode_decodes_on_every_medium() {
    let cases = [
        (BarcodeType::Code128, "A-1042/2024", "A-1042/2024"),
        (BarcodeType::Code128, "0123456789012", "0123456789012"),
        (BarcodeType::Code128, "lot 77 x", "lot 77 x"),
        (BarcodeType::Ean13, "400638133393", "4006381333931"),
    ];
    let mut rendered = 0;
    for (name, t) in every_medium() {
        for (kind, payload, expected) in cases {
            let data = LabelData {
                barcode: Some(payload.into()),
                barcode_type: kind,
                primary_id: Some("B-7".into()),
                ..LabelData::default()
            };
            let format = match kind {
                BarcodeType::Code128 => rxing::BarcodeFormat::CODE_128,
                BarcodeType::Ean13 => rxing::BarcodeFormat::EAN_13,
            };
            match render::render(ContentType::BarcodeOneLine, &data, &t) {
                Ok(page) => {
                    rendered += 1;
                    let got = decode_rxing(&page.black, format);
                    assert_eq!(got.as_deref(), Some(expected), "{name} {payload}");
                }
                Err(e) => assert!(allowed_refusal(&e), "{name} {payload}: {e}"),
            }
        }
    }
    assert!(rendered > 100, "only {rendered} barcodes rendered");
}

#[test]
fn every_datamatrix_decodes_on_every_medium() {
    let data = LabelData {
        barcode: Some("grcy:p:42:6612f0a1c2".into()),
        primary_id: Some("Milk".into()),
        title: Some("Fridge".into()),
        ..LabelData::default()
    };
    let mut rendered = 0;
    for (name, t) in every_medium() {
        match render::render(ContentType::DatamatrixTwoLines, &data, &t) {
            Ok(page) => {
                rendered += 1;
                let got = decode_rxing(&page.black, rxing::BarcodeFormat::DATA_MATRIX);
                assert_eq!(got.as_deref(), data.barcode.as_deref(), "{name}");
            }
            Err(e) => assert!(allowed_refusal(&e), "{name}: {e}"),
        }
    }
    assert!(rendered > 30, "only {rendered} media rendered");
}

#[test]
fn every_content_type_fits_every_medium_or_names_why() {
    let mut data = sample();
    data.image = Some(render::encode_base64(&test_image_png()));
    for (name, t) in every_medium() {
        for ct in ContentType::ALL {
            match render::render(ct, &data, &t) {
                Ok(page) => {
                    let g = &t.geometry;
                    assert_eq!(page.black.height(), g.printable_dots, "{name} {ct:?}");
                    match g.fixed_length_dots {
                        Some(len) => assert_eq!(page.black.width(), len, "{name} {ct:?}"),
                        None => assert!(
                            (g.min_length_dots..=g.max_length_dots).contains(&page.black.width()),
                            "{name} {ct:?}: {}",
                            page.black.width()
                        ),
                    }
                    assert_eq!(page.red.is_some(), g.two_colour, "{name} {ct:?}");
                    assert!(!page.black.is_blank(), "{name} {ct:?}");
                    encode::check_page(g, t.model, &page)
                        .unwrap_or_else(|e| panic!("{name} {ct:?}: encoder refuses: {e}"));
                }
                Err(e) => {
                    assert!(allowed_refusal(&e), "{name} {ct:?}: {e}");
                    // Only narrow tape (under 10 mm printable) or short
                    // die-cut labels (under 50 mm) refuse; every endless
                    // medium from 12 mm up takes every content type.
                    let g = &t.geometry;
                    let mm = |dots: u32| dots as f32 * 25.4 / g.dpi_across as f32;
                    let small = mm(g.printable_dots) < 10.0
                        || g.fixed_length_dots.is_some_and(|l| mm(l) < 50.0);
                    assert!(small, "{name} {ct:?}: {e}");
                }
            }
        }
    }
}

#[test]
fn two_colour_layers_are_disjoint_and_red_needs_red_media() {
    let t = target("QL-820NWB", "62red");
    let mut data = sample();
    data.red = vec!["title".into()];
    let page = render::render(ContentType::QrTwoLines, &data, &t).unwrap();
    let red = page.red.as_ref().unwrap();
    assert!(red.count_ink() > 1000);
    for y in 0..red.height() {
        for x in 0..red.width() {
            assert!(!(red.get(x, y) && page.black.get(x, y)));
        }
    }
    // The QR stays black and scans.
    assert_eq!(decode_qr(&page.black).len(), 1);

    let err =
        render::render(ContentType::QrTwoLines, &data, &target("QL-820NWB", "62")).unwrap_err();
    assert_eq!(err.code(), "red_not_supported");
    // Black-only data on red media still gets an (empty) red layer.
    let plain = render::render(ContentType::QrTwoLines, &sample(), &t).unwrap();
    assert!(plain.red.as_ref().unwrap().is_blank());
}

// ---------------------------------------------------------------- snapshots

/// A deterministic test picture: a grey ramp, a black disc and a red bar.
fn test_image_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(240, 120, |x, y| {
        let (dx, dy) = (x as i32 - 60, y as i32 - 60);
        if dx * dx + dy * dy < 40 * 40 {
            image::Rgb([0, 0, 0])
        } else if (150..230).contains(&x) && (20..50).contains(&y) {
            image::Rgb([220, 20, 20])
        } else {
            let v = (x * 255 / 239) as u8;
            image::Rgb([v, v, v])
        }
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/render")
}

/// Compares the preview PNG of `page` with `tests/data/render/<name>.png`
/// pixel by pixel (BLESS=1 rewrites it).
fn check_snapshot(name: &str, page: &Page) {
    let png = render::to_png(page);
    let path = snapshot_dir().join(format!("{name}.png"));
    if std::env::var_os("BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(snapshot_dir()).unwrap();
        std::fs::write(&path, &png).unwrap();
        return;
    }
    let want = image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create)", path.display()))
        .into_rgb8();
    let got = image::load_from_memory(&png).unwrap().into_rgb8();
    if want != got {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render-snapshots");
        std::fs::create_dir_all(&out).unwrap();
        let actual = out.join(format!("{name}.png"));
        std::fs::write(&actual, &png).unwrap();
        let diff = if want.dimensions() == got.dimensions() {
            want.pixels()
                .zip(got.pixels())
                .filter(|(a, b)| a != b)
                .count()
        } else {
            usize::MAX
        };
        panic!(
            "snapshot {name} differs ({}x{} -> {}x{}, {diff} pixels); new rendering: {} \
             (BLESS=1 to accept)",
            want.width(),
            want.height(),
            got.width(),
            got.height(),
            actual.display()
        );
    }
}

#[test]
fn snapshots_of_every_content_type_on_small_medium_and_large_media() {
    let mut data = sample();
    data.image = Some(render::encode_base64(&test_image_png()));
    let media = [
        ("small", "PT-P750W", "12"),
        ("medium", "PT-P900W", "24"),
        ("large", "QL-820NWB", "62"),
        ("diecut", "QL-820NWB", "62x29"),
    ];
    for (size, model, medium) in media {
        let t = target(model, medium);
        for ct in ContentType::ALL {
            let mut d = data.clone();
            if ct == ContentType::BarcodeTwoLines {
                d.barcode = Some("400638133393".into());
                d.barcode_type = BarcodeType::Ean13;
            }
            let page = render::render(ct, &d, &t)
                .unwrap_or_else(|e| panic!("{ct:?} on {model} {medium}: {e}"));
            check_snapshot(&format!("{}-{size}", ct.as_str()), &page);
        }
    }
    // Two colours: a red title, and an image split into red and black.
    let t = target("QL-820NWB", "62red");
    let mut d = data.clone();
    d.red = vec!["title".into()];
    check_snapshot(
        "qr_two_lines-62red",
        &render::render(ContentType::QrTwoLines, &d, &t).unwrap(),
    );
    d.red.clear();
    d.split_red = true;
    d.image_mode = ImageMode::Dither;
    check_snapshot(
        "image-dither-62red",
        &render::render(ContentType::Image, &d, &t).unwrap(),
    );
}

// --------------------------------------------------------------- boundaries

#[test]
fn missing_fields_are_listed_like_upstream() {
    let t = target("PT-P750W", "12");
    let data = LabelData {
        title: Some(String::new()),
        secondary: vec![],
        ..LabelData::default()
    };
    let err = render::render(ContentType::QrThreeLines, &data, &t).unwrap_err();
    assert_eq!(err.code(), "content_type_data_mismatch");
    assert_eq!(
        err.missing_fields(),
        ["qr_payload", "primary_id", "title", "secondary"]
    );
    // Fields not needed are ignored; an empty secondary line is not drawn.
    let mut d = sample();
    d.secondary = vec![String::new()];
    render::render(ContentType::QrThreeLines, &d, &t).unwrap();
    let err = render::render(ContentType::QrWithListing, &LabelData::default(), &t).unwrap_err();
    assert_eq!(err.missing_fields(), ["qr_payload", "primary_id", "items"]);
}

#[test]
fn longest_text_that_fits_and_one_more_character() {
    // A die-cut label has a fixed length, so a long line must shrink, then
    // be refused by name.
    let t = target("QL-820NWB", "29x42");
    let page_for = |n: usize| {
        let data = LabelData {
            primary_id: Some("W".repeat(n)),
            ..LabelData::default()
        };
        render::render(ContentType::TextOneLine, &data, &t)
    };
    let mut n = 1;
    while page_for(n + 1).is_ok() {
        n += 1;
        assert!(n < 200, "never stops fitting");
    }
    let page = page_for(n).unwrap();
    // The longest line still has its ink inside the label.
    let b = &page.black;
    for y in 0..b.height() {
        assert!(!b.get(0, y) && !b.get(b.width() - 1, y));
    }
    assert!(n >= 10, "only {n} W fit on a 42 mm label");
    let err = page_for(n + 1).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("text_does_not_fit", Some("primary_id"))
    );
    assert!(err.to_string().contains("primary_id"));

    // Hard length limit (endless media): 200 characters, not 201.
    let t = target("PT-P750W", "12");
    let long = |n| LabelData {
        primary_id: Some("x".repeat(n)),
        ..LabelData::default()
    };
    render::render(ContentType::TextOneLine, &long(render::MAX_TEXT_CHARS), &t).unwrap();
    let err = render::render(
        ContentType::TextOneLine,
        &long(render::MAX_TEXT_CHARS + 1),
        &t,
    )
    .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("field_too_long", Some("primary_id"))
    );
}

#[test]
fn endless_labels_stop_at_the_media_maximum() {
    // 200 wide letters would be about 1.4 m long at the tube's natural
    // size; heat-shrink tube allows 500 mm, so the line shrinks to fit.
    let t = target("PT-P750W", "12-hs");
    let max = t.geometry.max_length_dots;
    assert_eq!(max, 500 * 180 * 10 / 254);
    let data = LabelData {
        primary_id: Some("W".repeat(200)),
        ..LabelData::default()
    };
    let page = render::render(ContentType::TextOneLine, &data, &t).unwrap();
    assert!(page.black.width() <= max, "{} > {max}", page.black.width());
    assert!(page.black.width() > max * 9 / 10, "{}", page.black.width());
    // On 12 mm TZe (1 m) the same line keeps a larger size.
    let wide = render::render(ContentType::TextOneLine, &data, &target("PT-P750W", "12")).unwrap();
    assert!(wide.black.width() > page.black.width());
}

#[test]
fn qr_payload_capacity_follows_the_medium() {
    // 12 mm PT: 70 dots, so version 12 (65 modules + 4 quiet) is the largest
    // with one-dot modules: 287 bytes at level M.
    let t = target("PT-P750W", "12");
    let data = |n: usize| LabelData {
        qr_payload: Some("q".repeat(n)),
        ..LabelData::default()
    };
    let page = render::render(ContentType::QrOnly, &data(287), &t).unwrap();
    assert_eq!(decode_qr(&page.black), ["q".repeat(287)]);
    let err = render::render(ContentType::QrOnly, &data(288), &t).unwrap_err();
    assert_eq!(err.code(), "payload_too_large");
    assert!(err.to_string().contains("287"), "{err}");
    // A 62 mm label holds much more.
    render::render(ContentType::QrOnly, &data(1000), &target("QL-820NWB", "62")).unwrap();
    // 3.5 mm tape has no room for any QR code with a quiet zone.
    let err =
        render::render(ContentType::QrOnly, &data(1), &target("PT-P750W", "3.5")).unwrap_err();
    assert_eq!(err.code(), "code_does_not_fit");
    // The hard cap is checked before encoding.
    let err = render::render(
        ContentType::QrOnly,
        &data(render::MAX_QR_PAYLOAD_BYTES + 1),
        &target("QL-820NWB", "62"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "payload_too_large");
}

/// A PNG whose header claims `w × h` pixels, with no real pixel data: what
/// a decompression bomb looks like before decoding.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    0xEDB8_8320 ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1-bit grey
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    // IHDR, then a tiny IDAT (an empty zlib stream) and IEND.
    for chunk in [
        ihdr,
        b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01".to_vec(),
        b"IEND".to_vec(),
    ] {
        png.extend_from_slice(&(chunk.len() as u32 - 4).to_be_bytes());
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

#[test]
fn images_are_bounded_before_decoding() {
    let t = target("QL-820NWB", "62");
    let with_image = |b64: String| LabelData {
        image: Some(b64),
        ..LabelData::default()
    };
    let render_b64 = |b64: String| render::render(ContentType::Image, &with_image(b64), &t);

    // A 60000 x 60000 bomb: refused from its header.
    let err = render_b64(render::encode_base64(&png_header_only(60_000, 60_000))).unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    assert!(err.to_string().contains("60000x60000 pixels"), "{err}");
    // 4000 x 4000 is within the side limit but over the pixel limit.
    let err = render_b64(render::encode_base64(&png_header_only(4000, 4000))).unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    // More than 8 MiB of base64 is refused unread.
    let err = render_b64("A".repeat(12 * 1024 * 1024)).unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    // Garbage: not base64, base64 of a non-image, a truncated PNG.
    for bad in [
        "!!not base64!!".to_string(),
        "w6nDqcOp".to_string(),
        render::encode_base64(b"GIF89a...."),
        render::encode_base64(&test_image_png()[..100]),
    ] {
        let err = render_b64(bad.clone()).unwrap_err();
        assert_eq!(err.code(), "invalid_image", "{bad}");
    }
    // A real PNG scales to the printable height and keeps its aspect.
    let page = render_b64(render::encode_base64(&test_image_png())).unwrap();
    assert_eq!(page.black.height(), 696);
    assert_eq!(page.black.width(), 1392);
    // JPEG works too, with a data URL prefix.
    let mut jpeg = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(64, 32, image::Rgb([10, 10, 10]))
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let b64 = format!(
        "data:image/jpeg;base64,{}",
        render::encode_base64(&jpeg.into_inner())
    );
    let page = render::render(
        ContentType::Image,
        &with_image(b64),
        &target("PT-P750W", "12"),
    )
    .unwrap();
    assert_eq!((page.black.width(), page.black.height()), (140, 70));
}

#[test]
fn bad_barcodes_are_named() {
    let t = target("PT-P750W", "24");
    let data = |code: &str, kind| LabelData {
        barcode: Some(code.into()),
        barcode_type: kind,
        primary_id: Some("X".into()),
        ..LabelData::default()
    };
    for (code, kind) in [
        ("4006381333932", BarcodeType::Ean13),
        ("12345", BarcodeType::Ean13),
        ("Grüße", BarcodeType::Code128),
    ] {
        let err = render::render(ContentType::BarcodeOneLine, &data(code, kind), &t).unwrap_err();
        assert_eq!(err.code(), "invalid_barcode", "{code}");
    }
}

#[test]
fn unsupported_characters_and_unknown_targets() {
    let t = target("PT-P750W", "12");
    let data = LabelData {
        primary_id: Some("Box\u{7}".into()),
        ..LabelData::default()
    };
    let err = render::render(ContentType::TextOneLine, &data, &t).unwrap_err();
    assert_eq!(err.code(), "unsupported_character");
    assert_eq!(
        Target::lookup("PT-9999", "12").unwrap_err().code(),
        "unknown_model"
    );
    assert_eq!(
        Target::lookup("PT-P750W", "62").unwrap_err().code(),
        "unknown_media"
    );
    assert_eq!(
        Target::lookup("PT-P750W", "36").unwrap_err().code(),
        "media_not_supported"
    );
    // JSON with a lone surrogate escape is not valid label data.
    assert!(serde_json::from_str::<LabelData>(r#"{"title":"\ud800"}"#).is_err());
}

#[test]
fn random_data_never_panics() {
    // A deterministic stream of awkward label data (empty, long, spaces,
    // accents, symbols outside the font, digits only, control characters)
    // on narrow, wide, die-cut and turned media: every result is a page or
    // an error value.
    let media = [
        ("PT-P750W", "3.5"),
        ("PT-P750W", "12"),
        ("PT-P900W", "36"),
        ("QL-820NWB", "62red"),
        ("QL-820NWB", "d12"),
        ("QL-820NWB", "52x29"),
        ("QL-1110NWB", "103"),
    ];
    let mut pieces = vec![
        "",
        " ",
        "A",
        "Ü",
        "0123456789",
        "W",
        "€ 9,99",
        "long text ",
        "gg",
        "ÅÄÖ",
        "-",
        "/",
    ];
    pieces.extend(["A-1"; 40]);
    // Characters the renderer refuses, rarely.
    pieces.extend(["\u{1F600}", "\t"]);
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
        fn text(&mut self, pieces: &[&str], max: usize) -> String {
            let len = self.next(max);
            (0..len).map(|_| pieces[self.next(pieces.len())]).collect()
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut pages, mut refusals) = (0, std::collections::BTreeMap::new());
    for round in 0..300 {
        let n_items = 1 + rng.next(40);
        let n_secondary = rng.next(3);
        let mut data = LabelData {
            title: Some(rng.text(&pieces, 6)),
            primary_id: Some(rng.text(&pieces, 4)),
            qr_payload: Some(rng.text(&pieces, 30)),
            secondary: (0..n_secondary).map(|_| rng.text(&pieces, 5)).collect(),
            items: (0..n_items).map(|_| rng.text(&pieces, 4)).collect(),
            barcode: Some(rng.text(&pieces, 4)),
            ..LabelData::default()
        };
        data.barcode_type = if rng.next(2) == 0 {
            BarcodeType::Code128
        } else {
            BarcodeType::Ean13
        };
        if rng.next(4) == 0 {
            data.barcode = Some("5901234123457".into());
        }
        let ct = ContentType::ALL[rng.next(ContentType::ALL.len() - 1)];
        let (model, medium) = media[rng.next(media.len())];
        let t = target(model, medium);
        match render::render(ct, &data, &t) {
            Ok(page) => {
                pages += 1;
                assert_eq!(
                    page.black.height(),
                    t.geometry.printable_dots,
                    "round {round}"
                );
                encode::check_page(&t.geometry, t.model, &page).unwrap();
            }
            Err(e) => {
                assert_ne!(e.code(), "internal_render_error", "round {round}: {e}");
                assert!(!e.to_string().is_empty());
                *refusals.entry(e.code()).or_insert(0) += 1;
            }
        }
    }
    eprintln!("random data: {pages} pages, refusals {refusals:?}");
    // The stream exercises both outcomes.
    assert!(pages >= 100, "{pages} pages, refusals {refusals:?}");
    assert!(refusals.len() >= 3, "refusals {refusals:?}");
}

// ---------------------------------------------------------------------- CLI

fn labelhub() -> Command {
    Command::new(env!("CARGO_BIN_EXE_labelhub"))
}

#[test]
fn cli_renders_a_png_the_library_would() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("label.png");
    let data = r#"{"qr_payload":"https://x.example/1","primary_id":"A-1","title":"Box"}"#;
    let status = labelhub()
        .args(["render", "--model", "PT-P750W", "--media", "12"])
        .args(["--content-type", "qr_two_lines", "--data", data, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let png = image::open(&out).unwrap().into_luma8();
    let page = render::render(
        ContentType::QrTwoLines,
        &serde_json::from_str(data).unwrap(),
        &target("PT-P750W", "12"),
    )
    .unwrap();
    assert_eq!(png, page.black.to_gray_image());

    // --image reads a file.
    let img = dir.join("in.png");
    std::fs::write(&img, test_image_png()).unwrap();
    let status = labelhub()
        .args(["render", "--model", "QL-820NWB", "--media", "29x42"])
        .args(["--content-type", "image", "--image"])
        .arg(&img)
        .arg("-o")
        .arg(dir.join("img.png"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}

#[test]
fn cli_refuses_bad_input_with_a_message() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render-cli-bad.png");
    let run = |args: &[&str]| {
        labelhub()
            .arg("render")
            .args(args)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap()
    };
    let res = run(&[
        "--model",
        "PT-P750W",
        "--media",
        "12",
        "--content-type",
        "qr_one_line",
        "--data",
        "{}",
    ]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("content_type_data_mismatch"), "{err}");
    assert!(err.contains("qr_payload, primary_id"), "{err}");

    let res = run(&[
        "--model",
        "PT-P750W",
        "--media",
        "12",
        "--content-type",
        "nope",
    ]);
    assert_eq!(res.status.code(), Some(2));

    // Non-UTF-8 bytes in an argument are a usage error, not a panic.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let res = labelhub()
            .args(["render", "--model", "PT-P750W", "--media", "12"])
            .args(["--content-type", "text_one_line", "--data"])
            .arg(std::ffi::OsStr::from_bytes(
                b"{\"primary_id\":\"\xff\xfe\"}",
            ))
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(res.status.code(), Some(2));
    }
}
