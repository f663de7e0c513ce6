//! Uploaded images: base64 → bounded PNG/JPEG decode → scale to the label →
//! one bit per dot (threshold or Floyd–Steinberg), optionally with the red
//! pixels split into a second layer for two-colour media.
//!
//! **Invariant (decompression bombs):** the encoded size is checked before
//! base64 decoding, the header's dimensions are read and checked before any
//! pixel is decoded, and the decoder itself runs under `image::Limits`
//! (side length and allocation caps), so a small file that claims a huge
//! canvas is refused without allocating it.

use std::io::Cursor;

use image::{GrayImage, ImageBuffer, ImageFormat, ImageReader, Limits, Luma, Pixel, RgbImage};

use super::data::ImageMode;
use super::error::RenderError;
use crate::base64;
use crate::bitmap::Bitmap;

/// Largest accepted image file (decoded bytes).
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;
/// Largest accepted pixel count (a 12 MP phone photo).
pub const MAX_IMAGE_PIXELS: u64 = 12_000_000;
/// Largest accepted side, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Allocation cap handed to the decoder (RGBA8 of the largest image plus
/// decoder working memory).
const MAX_DECODER_ALLOC: u64 = 96 * 1024 * 1024;

/// Decodes the base64 text of an upload into file bytes, refusing oversized
/// text before decoding it.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, RenderError> {
    let text = base64::strip_data_url(text.trim());
    // Whitespace may pad the text a little; anything whose decoded size
    // could exceed the limit by more than that is refused unread.
    if base64::decoded_len_bound(text.len()) > MAX_IMAGE_BYTES + MAX_IMAGE_BYTES / 16 {
        return Err(RenderError::ImageTooLarge {
            reason: format!(
                "{} base64 characters; the limit is {} bytes of image data",
                text.len(),
                MAX_IMAGE_BYTES
            ),
        });
    }
    let bytes = base64::decode(text).map_err(|e| RenderError::InvalidImage {
        reason: e.to_string(),
    })?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(RenderError::ImageTooLarge {
            reason: format!(
                "{} bytes; the limit is {MAX_IMAGE_BYTES} bytes",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

/// Decodes PNG or JPEG file bytes to RGB on white (alpha composited), after
/// checking the header's dimensions.
pub fn load(bytes: &[u8]) -> Result<RgbImage, RenderError> {
    let invalid = |reason: String| RenderError::InvalidImage { reason };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| invalid(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        _ => return Err(invalid("not a PNG or JPEG file".into())),
    }
    let format = reader.format();
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| invalid(format!("unreadable header: {e}")))?;
    check_dimensions(w, h)?;

    let mut reader = ImageReader::new(Cursor::new(bytes));
    if let Some(format) = format {
        reader.set_format(format);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => RenderError::ImageTooLarge {
            reason: l.to_string(),
        },
        other => invalid(other.to_string()),
    })?;
    // Composite over white paper: transparent pixels must not print.
    let rgba = img.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(src.0[3]);
        for c in 0..3 {
            dst.0[c] = ((u32::from(src.0[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    Ok(rgb)
}

fn check_dimensions(w: u32, h: u32) -> Result<(), RenderError> {
    if w == 0 || h == 0 {
        return Err(RenderError::InvalidImage {
            reason: format!("the image is {w}x{h} pixels"),
        });
    }
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(RenderError::ImageTooLarge {
            reason: format!(
                "{w}x{h} pixels; the limit is {MAX_IMAGE_PIXELS} pixels and {MAX_IMAGE_SIDE} per side"
            ),
        });
    }
    Ok(())
}

/// Size of the image scaled to fit `max_w × max_h` dots, aspect kept
/// (`x_ratio` stretches along the feed for non-square dots).
pub fn fit_size(w: u32, h: u32, max_w: u32, max_h: u32, x_ratio: f32) -> (u32, u32) {
    let (w, h) = (w as f32 * x_ratio, h as f32);
    let scale = (max_h as f32 / h).min(max_w as f32 / w);
    let nw = (w * scale).round().clamp(1.0, max_w as f32) as u32;
    let nh = (h * scale).round().clamp(1.0, max_h as f32) as u32;
    (nw, nh)
}

/// Scales an image to `w × h` (area averaging when shrinking, bilinear
/// when enlarging).
pub fn scale<P>(img: &ImageBuffer<P, Vec<u8>>, w: u32, h: u32) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if w <= img.width() && h <= img.height() {
        image::imageops::thumbnail(img, w, h)
    } else {
        image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
    }
}

/// Rec. 601 luma.
fn luma(r: u8, g: u8, b: u8) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

/// brother_ql's colour rule for DK-22251 (0–255 HSV): hue below 40 or above
/// 210, saturation above 100, value above 80.
fn is_red(r: u8, g: u8, b: u8) -> bool {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    if max <= 80.0 || max == 0.0 || delta * 255.0 / max <= 100.0 {
        return false;
    }
    let hue = if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let hue = hue * 255.0 / 360.0;
    !(40.0..=210.0).contains(&hue)
}

/// One bit per dot from the image scaled to `w × h`: `(black, red)`; `red`
/// only when `split_red`. Without red the image is turned grey before
/// scaling (a third of the work).
pub fn to_layers(
    img: &RgbImage,
    (w, h): (u32, u32),
    mode: ImageMode,
    threshold: u8,
    split_red: bool,
) -> (Bitmap, Option<Bitmap>) {
    let (mut grey, red) = if split_red {
        let scaled = scale(img, w, h);
        let mut red = Bitmap::new(w, h);
        let mut grey = Vec::with_capacity((w * h) as usize);
        for (x, y, p) in scaled.enumerate_pixels() {
            let [r, g, b] = p.0;
            if is_red(r, g, b) {
                red.set(x, y, true);
                grey.push(255.0f32);
            } else {
                grey.push(luma(r, g, b));
            }
        }
        (grey, Some(red))
    } else {
        let small = GrayImage::from_fn(img.width(), img.height(), |x, y| {
            let [r, g, b] = img.get_pixel(x, y).0;
            Luma([luma(r, g, b).round() as u8])
        });
        let scaled = scale(&small, w, h);
        (
            scaled.as_raw().iter().map(|&v| f32::from(v)).collect(),
            None,
        )
    };
    let mut black = Bitmap::new(w, h);
    let t = f32::from(threshold);
    match mode {
        ImageMode::Threshold => {
            for y in 0..h {
                for x in 0..w {
                    if grey[(y * w + x) as usize] < t {
                        black.set(x, y, true);
                    }
                }
            }
        }
        ImageMode::Dither => {
            let (w, h) = (w as usize, h as usize);
            for y in 0..h {
                for x in 0..w {
                    let old = grey[y * w + x];
                    let ink = old < t;
                    let err = old - if ink { 0.0 } else { 255.0 };
                    if ink {
                        black.set(x as u32, y as u32, true);
                    }
                    let mut spread = |dx: isize, dy: usize, k: f32| {
                        let nx = x as isize + dx;
                        if nx >= 0 && (nx as usize) < w && y + dy < h {
                            grey[(y + dy) * w + nx as usize] += err * k;
                        }
                    };
                    spread(1, 0, 7.0 / 16.0);
                    spread(-1, 1, 3.0 / 16.0);
                    spread(0, 1, 5.0 / 16.0);
                    spread(1, 1, 1.0 / 16.0);
                }
            }
        }
    }
    (black, red)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: &RgbImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn loads_png_and_checks_dimensions_first() {
        let img = RgbImage::from_pixel(10, 4, image::Rgb([0, 0, 0]));
        let loaded = load(&png(&img)).unwrap();
        assert_eq!(loaded.dimensions(), (10, 4));
        assert_eq!(load(b"not an image").unwrap_err().code(), "invalid_image");
        assert_eq!(
            check_dimensions(5000, 5000).unwrap_err().code(),
            "image_too_large"
        );
        assert_eq!(check_dimensions(0, 5).unwrap_err().code(), "invalid_image");
    }

    #[test]
    fn transparent_is_paper() {
        let img = image::RgbaImage::from_pixel(3, 3, image::Rgba([0, 0, 0, 0]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        let rgb = load(&out.into_inner()).unwrap();
        assert!(rgb.pixels().all(|p| p.0 == [255, 255, 255]));
    }

    #[test]
    fn fit_and_dither() {
        assert_eq!(fit_size(200, 100, 10_000, 70, 1.0), (140, 70));
        assert_eq!(fit_size(200, 100, 100, 70, 1.0), (100, 50));
        // 50% grey dithers to about half ink; thresholded at 128 it is paper.
        let grey = RgbImage::from_pixel(40, 40, image::Rgb([128, 128, 128]));
        let (dithered, _) = to_layers(&grey, (40, 40), ImageMode::Dither, 128, false);
        let ink = dithered.count_ink();
        assert!((700..=900).contains(&ink), "{ink}");
        let (thresh, _) = to_layers(&grey, (40, 40), ImageMode::Threshold, 128, false);
        assert_eq!(thresh.count_ink(), 0);
    }

    #[test]
    fn red_split() {
        assert!(is_red(220, 20, 30));
        assert!(!is_red(20, 20, 20));
        assert!(!is_red(20, 200, 30));
        assert!(!is_red(255, 200, 200)); // pale pink: not saturated
        let mut img = RgbImage::from_pixel(2, 1, image::Rgb([0, 0, 0]));
        img.put_pixel(1, 0, image::Rgb([230, 0, 0]));
        let (black, red) = to_layers(&img, (2, 1), ImageMode::Threshold, 128, true);
        let red = red.unwrap();
        assert!(black.get(0, 0) && !black.get(1, 0));
        assert!(red.get(1, 0) && !red.get(0, 0));
    }
}
