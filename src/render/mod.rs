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
//! Module map: `data` (request types, limits), `layout` (content types →
//! layers), `font` (embedded DejaVu, shaping), `matrix` (QR, Data Matrix),
//! `barcode` (Code 128, EAN-13), `picture` (image decoding and 1-bit
//! conversion), `canvas` (fast drawing surface), `dims`, `base64`, `error`.

mod barcode;
mod base64;
mod canvas;
mod data;
mod dims;
mod error;
mod font;
mod layout;
mod matrix;
mod picture;

use std::io::Cursor;

pub use crate::brother::encode::Page;
use crate::brother::media::{self, Geometry};
use crate::brother::model::{self, Model};
pub use data::{
    BarcodeType, ContentType, ImageMode, LabelData, MAX_BARCODE_BYTES, MAX_ITEMS,
    MAX_QR_PAYLOAD_BYTES, MAX_SECONDARY, MAX_TEXT_CHARS, RED_ELEMENTS,
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
        let geometry = media::geometry(model, media_id).map_err(|e| RenderError::Media {
            code: e.code(),
            message: e.to_string(),
        })?;
        Ok(Target {
            model,
            geometry,
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
        black: layers.black.into_bitmap(),
        red: layers.red.map(canvas::Canvas::into_bitmap),
    })
}

/// Colour of the red layer in previews.
const PREVIEW_RED: [u8; 3] = [204, 0, 0];

/// A preview PNG of `page` in label orientation: white paper, black ink, red
/// ink in red. Grey-scale when there is no red layer.
pub fn to_png(page: &Page) -> Vec<u8> {
    let (w, h) = (page.black.width(), page.black.height());
    let mut out = Cursor::new(Vec::new());
    let res = match &page.red {
        None => page
            .black
            .to_gray_image()
            .write_to(&mut out, image::ImageFormat::Png),
        Some(red) => image::RgbImage::from_fn(w, h, |x, y| {
            if red.get(x, y) {
                image::Rgb(PREVIEW_RED)
            } else if page.black.get(x, y) {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        })
        .write_to(&mut out, image::ImageFormat::Png),
    };
    // Encoding a non-empty in-memory image cannot fail; an empty result is
    // the documented (never expected) failure signal.
    match res {
        Ok(()) => out.into_inner(),
        Err(_) => Vec::new(),
    }
}

/// Empties the renderer's glyph caches, so the next render is timed cold
/// (for benchmarks; rendering never needs it).
#[doc(hidden)]
pub fn clear_font_caches() {
    font::clear_caches();
}

/// Base64 (standard alphabet, padded) of file bytes, for `LabelData::image`.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::encode(bytes)
}
