//! `RenderError`: every way a render request can be refused.
//!
//! Each variant has a stable snake_case machine code (`code()`) and a human
//! message (`Display`) that names the offending field. Which HTTP status a
//! code gets is decided in `api::error` alone.

use std::fmt;

use super::content::ContentType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The model name is not in the model table.
    UnknownModel { model: String },
    /// The medium is unknown or the model cannot print it (code and message
    /// come from `brother::media`).
    Media { code: &'static str, message: String },
    /// Fields the content type needs are missing (null, empty string or empty
    /// list). Lists every missing field, in the order of the content type's
    /// field table (upstream compatible).
    ContentTypeDataMismatch {
        content_type: ContentType,
        missing_fields: Vec<&'static str>,
    },
    /// A text field is longer than the hard input limit.
    FieldTooLong {
        field: String,
        chars: usize,
        max_chars: usize,
    },
    /// A list field has more entries than the hard input limit.
    TooManyEntries {
        field: &'static str,
        entries: usize,
        max_entries: usize,
    },
    /// A text field holds a control character or a character the embedded
    /// font has no glyph for (it would print as an empty box).
    UnsupportedCharacter { field: String, character: char },
    /// Text does not fit the medium even at the minimum legible size.
    TextDoesNotFit { field: String, min_px: u32 },
    /// The QR payload is larger than the largest QR code this medium holds.
    PayloadTooLarge {
        field: &'static str,
        bytes: usize,
        max_bytes: usize,
    },
    /// Not even the smallest symbol of this kind fits the medium.
    CodeDoesNotFit {
        field: &'static str,
        symbology: &'static str,
    },
    /// The barcode payload is not valid for its symbology.
    InvalidBarcode {
        symbology: &'static str,
        reason: String,
    },
    /// The uploaded image is too large (bytes or pixels), checked before
    /// decoding.
    ImageTooLarge { reason: String },
    /// The uploaded image is not valid base64, not PNG/JPEG, or corrupt.
    InvalidImage { reason: String },
    /// The label would be longer than the medium allows.
    LabelTooLong { length_dots: u32, max_dots: u32 },
    /// Red printing was requested on a medium/model without a red layer.
    RedNotSupported { media: String },
    /// An option has a value outside its range or an unknown name.
    InvalidOption { field: &'static str, reason: String },
    /// An invariant of the embedded resources failed (never expected).
    Internal { reason: &'static str },
}

impl RenderError {
    /// Stable machine-readable code (snake_case).
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::UnknownModel { .. } => "unknown_model",
            RenderError::Media { code, .. } => code,
            RenderError::ContentTypeDataMismatch { .. } => "content_type_data_mismatch",
            RenderError::FieldTooLong { .. } => "field_too_long",
            RenderError::TooManyEntries { .. } => "too_many_entries",
            RenderError::UnsupportedCharacter { .. } => "unsupported_character",
            RenderError::TextDoesNotFit { .. } => "text_does_not_fit",
            RenderError::PayloadTooLarge { .. } => "payload_too_large",
            RenderError::CodeDoesNotFit { .. } => "code_does_not_fit",
            RenderError::InvalidBarcode { .. } => "invalid_barcode",
            RenderError::ImageTooLarge { .. } => "image_too_large",
            RenderError::InvalidImage { .. } => "invalid_image",
            RenderError::LabelTooLong { .. } => "label_too_long",
            RenderError::RedNotSupported { .. } => "red_not_supported",
            RenderError::InvalidOption { .. } => "invalid_option",
            RenderError::Internal { .. } => "internal_render_error",
        }
    }

    /// The field the error is about, when there is one (for `error_detail`).
    pub fn field(&self) -> Option<&str> {
        match self {
            RenderError::FieldTooLong { field, .. }
            | RenderError::UnsupportedCharacter { field, .. }
            | RenderError::TextDoesNotFit { field, .. } => Some(field),
            RenderError::TooManyEntries { field, .. }
            | RenderError::PayloadTooLarge { field, .. }
            | RenderError::CodeDoesNotFit { field, .. }
            | RenderError::InvalidOption { field, .. } => Some(field),
            RenderError::InvalidBarcode { .. } => Some("barcode"),
            RenderError::ImageTooLarge { .. } | RenderError::InvalidImage { .. } => Some("image"),
            _ => None,
        }
    }

    /// Fields missing for `content_type_data_mismatch` (empty otherwise).
    pub fn missing_fields(&self) -> &[&'static str] {
        match self {
            RenderError::ContentTypeDataMismatch { missing_fields, .. } => missing_fields,
            _ => &[],
        }
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::UnknownModel { model } => write!(f, "unknown printer model `{model}`"),
            RenderError::Media { message, .. } => f.write_str(message),
            RenderError::ContentTypeDataMismatch {
                content_type,
                missing_fields,
            } => write!(
                f,
                "content type `{}` needs the missing field(s): {}",
                content_type.as_str(),
                missing_fields.join(", ")
            ),
            RenderError::FieldTooLong {
                field,
                chars,
                max_chars,
            } => write!(
                f,
                "`{field}` has {chars} characters; at most {max_chars} are allowed"
            ),
            RenderError::TooManyEntries {
                field,
                entries,
                max_entries,
            } => write!(
                f,
                "`{field}` has {entries} entries; at most {max_entries} are allowed"
            ),
            RenderError::UnsupportedCharacter { field, character } => {
                if character.is_control() {
                    write!(
                        f,
                        "`{field}` contains the control character U+{:04X}",
                        u32::from(*character)
                    )
                } else {
                    write!(
                        f,
                        "`{field}` contains `{character}` (U+{:04X}), which the label font cannot print",
                        u32::from(*character)
                    )
                }
            }
            RenderError::TextDoesNotFit { field, min_px } => write!(
                f,
                "`{field}` does not fit on this medium, even at the minimum legible size of {min_px} px"
            ),
            RenderError::PayloadTooLarge {
                field,
                bytes,
                max_bytes,
            } => write!(
                f,
                "`{field}` is {bytes} bytes; a code that fits this medium holds at most {max_bytes} bytes"
            ),
            RenderError::CodeDoesNotFit { field, symbology } => write!(
                f,
                "no {symbology} symbol for `{field}` fits this medium with whole-dot modules and a quiet zone"
            ),
            RenderError::InvalidBarcode { symbology, reason } => {
                write!(f, "invalid {symbology} barcode: {reason}")
            }
            RenderError::ImageTooLarge { reason } => write!(f, "image too large: {reason}"),
            RenderError::InvalidImage { reason } => write!(f, "invalid image: {reason}"),
            RenderError::LabelTooLong {
                length_dots,
                max_dots,
            } => write!(
                f,
                "the label would be {length_dots} dots long; this medium allows at most {max_dots}"
            ),
            RenderError::RedNotSupported { media } => write!(
                f,
                "red printing needs two-colour media on a two-colour model; `{media}` is not"
            ),
            RenderError::InvalidOption { field, reason } => write!(f, "`{field}`: {reason}"),
            RenderError::Internal { reason } => write!(f, "internal render error: {reason}"),
        }
    }
}

impl std::error::Error for RenderError {}
