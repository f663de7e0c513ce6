//! The render request: `LabelData`, and the checks that run before any
//! drawing (required fields, hard input limits, characters).
//!
//! **Invariant:** `validate` runs first and is cheap: it looks at lengths and
//! characters only, so an oversized or malformed request is refused before a
//! font, QR encoder or image decoder sees it.

use serde::{Deserialize, Deserializer, Serialize};

use super::content::ContentType;
use super::error::RenderError;
use super::font;

/// Longest accepted text field (title, primary_id, each secondary line, each
/// item), in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most `secondary` lines accepted (only the first is drawn, as upstream).
pub const MAX_SECONDARY: usize = 16;
/// Most `items` accepted for `qr_with_listing`.
pub const MAX_ITEMS: usize = 200;
/// Hard cap on the QR payload before encoding; the medium usually allows
/// less (checked when the symbol is built).
pub const MAX_QR_PAYLOAD_BYTES: usize = 4096;
/// Hard cap on a barcode / Data Matrix payload, in bytes.
pub const MAX_BARCODE_BYTES: usize = 512;

/// 1D symbology for `barcode_*` content types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarcodeType {
    /// Code 128, code sets B and C chosen automatically (shortest symbol).
    #[default]
    Code128,
    /// EAN-13: 12 digits (check digit added) or 13 digits (check verified).
    Ean13,
}

/// How an uploaded image becomes one bit per dot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageMode {
    /// Darker than `threshold` prints (best for logos, text, line art).
    #[default]
    Threshold,
    /// Floyd–Steinberg error diffusion (best for photos).
    Dither,
}

/// The label data. Field names follow the upstream hub (`title`,
/// `primary_id`, `qr_payload`, `secondary`, `items`); the rest are labelhub
/// additions. Fields a content type does not need are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelData {
    /// Set by the server upstream (`manual`, `grocy`, ...); never drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_app: Option<String>,
    pub title: Option<String>,
    pub primary_id: Option<String>,
    pub qr_payload: Option<String>,
    pub secondary: Vec<String>,
    /// Listing lines. Accepts plain strings or upstream's
    /// `{"item": "...", "qr_payload": ...}` objects (per-item QR is reserved
    /// upstream and not drawn, so only `item` is kept).
    #[serde(deserialize_with = "deserialize_items")]
    pub items: Vec<String>,
    /// Payload of the 1D barcode or Data Matrix symbol.
    pub barcode: Option<String>,
    pub barcode_type: BarcodeType,
    /// PNG or JPEG, base64 (a `data:image/...;base64,` prefix is accepted).
    pub image: Option<String>,
    pub image_mode: ImageMode,
    /// Threshold for `image_mode = threshold`, 1..=255 (default 128): grey
    /// values below it print.
    pub threshold: Option<u8>,
    /// On two-colour media: elements printed in red, named by their field
    /// (`title`, `primary_id`, `secondary`, `items`, `qr_payload`, `barcode`,
    /// `image`).
    pub red: Vec<String>,
    /// On two-colour media: split the image's red pixels into the red layer
    /// (hue/saturation rule of brother_ql), the rest into black.
    pub split_red: bool,
}

/// Names accepted in `LabelData::red`.
pub const RED_ELEMENTS: [&str; 7] = [
    "title",
    "primary_id",
    "secondary",
    "items",
    "qr_payload",
    "barcode",
    "image",
];

#[derive(Deserialize)]
#[serde(untagged)]
enum ItemRepr {
    Text(String),
    Object {
        item: String,
        #[allow(dead_code)]
        #[serde(default)]
        qr_payload: Option<String>,
    },
}

fn deserialize_items<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let items: Option<Vec<ItemRepr>> = Option::deserialize(de)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .map(|it| match it {
            ItemRepr::Text(s) => s,
            ItemRepr::Object { item, .. } => item,
        })
        .collect())
}

impl LabelData {
    /// Upstream's notion of "missing": null, empty string or empty list.
    fn is_missing(&self, field: &str) -> bool {
        fn blank(s: &Option<String>) -> bool {
            s.as_deref().is_none_or(str::is_empty)
        }
        match field {
            "title" => blank(&self.title),
            "primary_id" => blank(&self.primary_id),
            "qr_payload" => blank(&self.qr_payload),
            "secondary" => self.secondary.is_empty(),
            "items" => self.items.is_empty(),
            "barcode" => blank(&self.barcode),
            "image" => blank(&self.image),
            _ => true,
        }
    }

    /// `true` when `element` is listed in `red`.
    pub fn is_red(&self, element: &str) -> bool {
        self.red.iter().any(|r| r == element)
    }
}

/// The request-level checks, in order: required fields (all missing ones
/// reported together), list sizes, text lengths and characters, payload
/// sizes, option values. `two_colour` says whether the target has a red
/// layer.
pub fn validate(
    ct: ContentType,
    data: &LabelData,
    two_colour: bool,
    media_id: &str,
) -> Result<(), RenderError> {
    let missing: Vec<&'static str> = ct
        .required_fields()
        .iter()
        .copied()
        .filter(|f| data.is_missing(f))
        .collect();
    if !missing.is_empty() {
        return Err(RenderError::ContentTypeDataMismatch {
            content_type: ct,
            missing_fields: missing,
        });
    }
    if data.secondary.len() > MAX_SECONDARY {
        return Err(RenderError::TooManyEntries {
            field: "secondary",
            entries: data.secondary.len(),
            max_entries: MAX_SECONDARY,
        });
    }
    if data.items.len() > MAX_ITEMS {
        return Err(RenderError::TooManyEntries {
            field: "items",
            entries: data.items.len(),
            max_entries: MAX_ITEMS,
        });
    }
    for (field, text) in drawn_text(ct, data) {
        check_text(&field, text)?;
    }
    if let Some(payload) = data.qr_payload.as_deref().filter(|_| uses_qr(ct)) {
        if payload.len() > MAX_QR_PAYLOAD_BYTES {
            return Err(RenderError::PayloadTooLarge {
                field: "qr_payload",
                bytes: payload.len(),
                max_bytes: MAX_QR_PAYLOAD_BYTES,
            });
        }
    }
    if let Some(code) = data.barcode.as_deref() {
        if code.len() > MAX_BARCODE_BYTES {
            return Err(RenderError::PayloadTooLarge {
                field: "barcode",
                bytes: code.len(),
                max_bytes: MAX_BARCODE_BYTES,
            });
        }
    }
    if data.threshold == Some(0) {
        return Err(RenderError::InvalidOption {
            field: "threshold",
            reason: "must be 1..=255 (0 would print nothing)".into(),
        });
    }
    for name in &data.red {
        if !RED_ELEMENTS.contains(&name.as_str()) {
            return Err(RenderError::InvalidOption {
                field: "red",
                reason: format!(
                    "unknown element `{name}`; expected one of {}",
                    RED_ELEMENTS.join(", ")
                ),
            });
        }
    }
    if (!data.red.is_empty() || data.split_red) && !two_colour {
        return Err(RenderError::RedNotSupported {
            media: media_id.to_string(),
        });
    }
    Ok(())
}

fn uses_qr(ct: ContentType) -> bool {
    matches!(
        ct,
        ContentType::QrOnly
            | ContentType::QrOneLine
            | ContentType::QrTwoLines
            | ContentType::QrThreeLines
            | ContentType::QrWithListing
    )
}

/// The text fields `ct` draws, with the name used in errors.
fn drawn_text(ct: ContentType, data: &LabelData) -> Vec<(String, &str)> {
    let mut res = Vec::new();
    let primary = data.primary_id.as_deref().unwrap_or("");
    let title = data.title.as_deref().unwrap_or("");
    match ct {
        ContentType::QrOnly | ContentType::Image => {}
        ContentType::QrOneLine | ContentType::TextOneLine | ContentType::BarcodeOneLine => {
            res.push(("primary_id".to_string(), primary));
        }
        ContentType::QrTwoLines
        | ContentType::TextTwoLines
        | ContentType::BarcodeTwoLines
        | ContentType::DatamatrixTwoLines => {
            res.push(("primary_id".to_string(), primary));
            res.push(("title".to_string(), title));
        }
        ContentType::QrThreeLines => {
            res.push(("primary_id".to_string(), primary));
            res.push(("title".to_string(), title));
            for (i, s) in data.secondary.iter().enumerate() {
                res.push((format!("secondary[{i}]"), s.as_str()));
            }
        }
        ContentType::QrWithListing => {
            // primary_id is required but not drawn (upstream behaviour);
            // still bounded.
            res.push(("primary_id".to_string(), primary));
            for (i, s) in data.items.iter().enumerate() {
                res.push((format!("items[{i}]"), s.as_str()));
            }
        }
    }
    res
}

/// Length and character check for one drawn text field.
fn check_text(field: &str, text: &str) -> Result<(), RenderError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(RenderError::FieldTooLong {
            field: field.to_string(),
            chars,
            max_chars: MAX_TEXT_CHARS,
        });
    }
    if let Some(character) = text
        .chars()
        .find(|&c| c.is_control() || !font::has_glyph(c))
    {
        return Err(RenderError::UnsupportedCharacter {
            field: field.to_string(),
            character,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_names_round_trip() {
        for ct in ContentType::ALL {
            assert_eq!(ContentType::parse(ct.as_str()), Some(ct));
            let json = serde_json::to_string(&ct).unwrap();
            assert_eq!(json, format!("\"{}\"", ct.as_str()));
        }
        assert_eq!(ContentType::parse("qr_four_lines"), None);
    }

    #[test]
    fn missing_fields_are_all_listed_in_table_order() {
        let data = LabelData {
            title: Some(String::new()),
            ..LabelData::default()
        };
        let err = validate(ContentType::QrThreeLines, &data, false, "12").unwrap_err();
        assert_eq!(err.code(), "content_type_data_mismatch");
        assert_eq!(
            err.missing_fields(),
            &["qr_payload", "primary_id", "title", "secondary"]
        );
    }

    #[test]
    fn items_accept_strings_and_upstream_objects() {
        let data: LabelData = serde_json::from_str(
            r#"{"items": ["a", {"item": "b", "qr_payload": null}, {"item": "c"}]}"#,
        )
        .unwrap();
        assert_eq!(data.items, ["a", "b", "c"]);
        let null_items: LabelData = serde_json::from_str(r#"{"items": null}"#).unwrap();
        assert!(null_items.items.is_empty());
        assert!(serde_json::from_str::<LabelData>(r#"{"titel": "x"}"#).is_err());
    }

    #[test]
    fn limits_and_characters() {
        let long = LabelData {
            primary_id: Some("x".repeat(MAX_TEXT_CHARS + 1)),
            ..LabelData::default()
        };
        let err = validate(ContentType::TextOneLine, &long, false, "12").unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("field_too_long", Some("primary_id"))
        );

        let ctrl = LabelData {
            primary_id: Some("a\nb".into()),
            ..LabelData::default()
        };
        let err = validate(ContentType::TextOneLine, &ctrl, false, "12").unwrap_err();
        assert_eq!(err.code(), "unsupported_character");

        let cjk = LabelData {
            primary_id: Some("棚".into()),
            ..LabelData::default()
        };
        let err = validate(ContentType::TextOneLine, &cjk, false, "12").unwrap_err();
        assert_eq!(err.code(), "unsupported_character");

        let ok = LabelData {
            primary_id: Some("Größe Ø 12 € – Ærø".into()),
            ..LabelData::default()
        };
        validate(ContentType::TextOneLine, &ok, false, "12").unwrap();
    }

    #[test]
    fn red_needs_two_colour_media() {
        let data = LabelData {
            primary_id: Some("A".into()),
            red: vec!["primary_id".into()],
            ..LabelData::default()
        };
        let err = validate(ContentType::TextOneLine, &data, false, "12").unwrap_err();
        assert_eq!(err.code(), "red_not_supported");
        validate(ContentType::TextOneLine, &data, true, "62red").unwrap();
        let bad = LabelData {
            red: vec!["everything".into()],
            ..data
        };
        let err = validate(ContentType::TextOneLine, &bad, true, "62red").unwrap_err();
        assert_eq!(err.code(), "invalid_option");
    }
}
