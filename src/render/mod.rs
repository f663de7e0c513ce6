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
//! conversion), `canvas` (fast drawing surface), `dims`, `error`. Base64 is
//! the crate's `base64`.

mod barcode;
mod canvas;
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
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::{ExtendedColorType, ImageEncoder};

    let (w, h) = (page.black.width(), page.black.height());
    let black = expand(&page.black);
    let (pixels, colour) = match &page.red {
        None => (black, ExtendedColorType::L8),
        Some(red) => {
            let red = expand(red);
            let mut rgb = Vec::with_capacity(black.len() * 3);
            for (&b, &r) in black.iter().zip(&red) {
                rgb.extend_from_slice(if r == 0 {
                    &PREVIEW_RED
                } else if b == 0 {
                    &[0, 0, 0]
                } else {
                    &[255, 255, 255]
                });
            }
            (rgb, ExtendedColorType::Rgb8)
        }
    };
    let mut out = Vec::new();
    let encoder = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Up);
    // Encoding a well-sized in-memory image cannot fail; an empty result is
    // the documented (never expected) failure signal.
    match encoder.write_image(&pixels, w, h, colour) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// One grey byte per dot (0 = ink, 255 = paper) from packed rows.
fn expand(bmp: &crate::bitmap::Bitmap) -> Vec<u8> {
    let w = bmp.width() as usize;
    let mut res = Vec::with_capacity(w * bmp.height() as usize);
    for y in 0..bmp.height() {
        for (i, &byte) in bmp.row(y).iter().enumerate() {
            let n = (w - i * 8).min(8);
            res.extend((0..n).map(|k| if byte & (0x80 >> k) != 0 { 0 } else { 255 }));
        }
    }
    res
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
