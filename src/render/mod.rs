//! Label rendering: a content type plus label data (or an uploaded image)
//! becomes a `Page` (black layer, optional red layer) for one medium on one
//! printer model. Print and preview use this one renderer.
//!
//! **Architecture invariants.**
//! - No IO: the renderer reads only its arguments and the fonts compiled into
//!   the binary.
//! - Dimensions come from `brother::media::geometry` (the one media table),
//!   via `Target`; layout code only sees the few numbers in `Dims`.
//! - Every request is bounded before work starts (`data::validate`: field
//!   lengths, list sizes, payload sizes, characters; `picture`: image bytes
//!   and header dimensions before decoding), and every refusal is a
//!   `RenderError` with a stable code, never a panic.
//! - The output always fits the medium: height = printable dots, width =
//!   die-cut length or within the medium's length limits; nothing is clipped.
//!
//! Module map: `content` (content types and their names), `data` (label
//! data, limits), `layout` (content types →
//! layers), `font` (embedded DejaVu, shaping), `matrix` (QR, Data Matrix),
//! `barcode` (Code 128, EAN-13), `picture` (image decoding and 1-bit
//! conversion), `dims`, `error`. Layers are drawn on `bitmap::Bitmap`. Base64 is
//! the crate's `base64`.

mod barcode;
mod content;
mod data;
mod dims;
mod error;
mod font;
mod layout;
mod matrix;
mod picture;

pub use crate::brother::encode::Page;
use crate::brother::media::{self, Geometry};
use crate::brother::model::{self, Model};
pub use content::ContentType;
pub use data::{
    BarcodeType, ImageMode, LabelData, MAX_BARCODE_BYTES, MAX_ITEMS, MAX_QR_PAYLOAD_BYTES,
    MAX_SECONDARY, MAX_TEXT_CHARS, RED_ELEMENTS,
};
pub use dims::Dims;
pub use error::RenderError;
pub use picture::{MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE};

/// What to render for: a model and the geometry of its loaded medium.
#[derive(Clone, Debug)]
pub struct Target {
    pub model: &'static Model,
    pub geometry: Geometry,
    /// Carried for the encoder: high resolution doubles raster lines there.
    /// The renderer always draws at normal resolution (square dots), so
    /// preview and print show the same bitmap.
    pub high_res: bool,
}

impl Target {
    /// Looks the model and medium up in the `brother` tables.
    pub fn lookup(model_name: &str, media_id: &str) -> Result<Target, RenderError> {
        let model = model::by_name(model_name).ok_or_else(|| RenderError::UnknownModel {
            model: model_name.to_string(),
        })?;
        Target::on(model, media_id).map_err(|e| RenderError::Media {
            code: e.code(),
            message: e.to_string(),
        })
    }

    /// `model` with the medium `media_id` (the model already looked up).
    pub fn on(model: &'static Model, media_id: &str) -> Result<Target, media::MediaError> {
        Ok(Target {
            model,
            geometry: media::geometry(model, media_id)?,
            high_res: false,
        })
    }

    /// The numbers layout needs.
    pub fn dims(&self) -> Dims {
        let g = &self.geometry;
        Dims {
            height: g.printable_dots,
            dpi_across: g.dpi_across,
            dpi_feed: g.dpi_feed,
            fixed_length: g.fixed_length_dots,
            min_length: g.min_length_dots,
            max_length: g.max_length_dots,
            two_colour: g.two_colour,
        }
    }
}

/// Renders one label. The page's height is the medium's printable dots, its
/// width the label length; `red` is `Some` exactly on two-colour targets.
pub fn render(ct: ContentType, data: &LabelData, target: &Target) -> Result<Page, RenderError> {
    let dims = target.dims();
    data::validate(ct, data, dims.two_colour, target.geometry.media.id)?;
    let layers = layout::render(ct, data, &dims)?;
    Ok(Page {
        black: layers.black,
        red: layers.red,
    })
}

/// A preview PNG of `page` in label orientation (`bitmap::to_png`: the same
/// PNG the emulator and `labelhub decode` write).
pub fn to_png(page: &Page) -> Vec<u8> {
    // Encoding a well-sized in-memory image cannot fail; an empty result is
    // the documented (never expected) failure signal.
    crate::bitmap::to_png(&page.black, page.red.as_ref()).unwrap_or_default()
}

/// Empties the renderer's glyph caches, so the next render is timed cold
/// (for benchmarks; rendering never needs it).
#[doc(hidden)]
pub fn clear_font_caches() {
    font::clear_caches();
}

/// Base64 (standard alphabet, padded) of file bytes, for `LabelData::image`.
pub fn encode_base64(bytes: &[u8]) -> String {
    crate::base64::encode(bytes)
}
