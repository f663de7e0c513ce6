//! Embedded fonts and text shaping: DejaVu Sans regular and bold (from the
//! `dejavu` crate, compiled into the binary), laid out and rasterised with
//! `ab_glyph`.
//!
//! **Sizes** are ab_glyph pixel scales: the font's ascent-to-descent height
//! in dots (for DejaVu Sans the cap height is about 0.63 of it).
//!
//! **Invariants.** A `Text` knows the exact ink box of every glyph it holds
//! (`px_bounds`, rounded outwards), so a caller that places the box inside the
//! canvas never clips ink. Glyph origins sit on whole dots (the pen position
//! is rounded per glyph) so repeated letters rasterise identically; coverage
//! is thresholded at one half, which keeps 1-bit stems crisp at 180–360 dpi.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont};

use super::canvas::Canvas;
use super::error::RenderError;

/// Regular for titles and lists, bold for the primary id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

static REGULAR: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
static BOLD: OnceLock<Option<FontRef<'static>>> = OnceLock::new();

fn font(weight: Weight) -> Result<&'static FontRef<'static>, RenderError> {
    let slot = match weight {
        Weight::Regular => {
            REGULAR.get_or_init(|| FontRef::try_from_slice(dejavu::sans::regular()).ok())
        }
        Weight::Bold => BOLD.get_or_init(|| FontRef::try_from_slice(dejavu::sans::bold()).ok()),
    };
    slot.as_ref().ok_or(RenderError::Internal {
        reason: "embedded font does not parse",
    })
}

/// `true` when both weights have a real glyph (not `.notdef`) for `c`.
pub fn has_glyph(c: char) -> bool {
    [Weight::Regular, Weight::Bold]
        .into_iter()
        .all(|w| match font(w) {
            Ok(f) => f.glyph_id(c) != GlyphId(0),
            Err(_) => false,
        })
}

/// A line of text shaped at one size, with its measured ink extents.
/// Coordinates are relative to the pen origin: `x = 0` where the pen starts,
/// `y = 0` on the baseline, `y` growing downwards.
pub struct Text {
    glyphs: Vec<OutlinedGlyph>,
    /// Ink box (exclusive right/bottom); all zero when there is no ink.
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
    /// Top of a capital `H` at this size (negative: above the baseline).
    pub cap_top: i32,
    /// The scale it was shaped at.
    pub scale: f32,
}

impl Text {
    /// Ink width in dots.
    pub fn width(&self) -> u32 {
        (self.right - self.left).max(0) as u32
    }

    /// Top of the line box: the ink top, but never below cap height, so that
    /// lines of lower-case letters stack like lines with capitals.
    pub fn box_top(&self) -> i32 {
        self.top.min(self.cap_top)
    }

    /// Bottom of the line box: the ink bottom, but never above the baseline.
    pub fn box_bottom(&self) -> i32 {
        self.bottom.max(0)
    }

    /// Height of the line box in dots.
    pub fn box_height(&self) -> u32 {
        (self.box_bottom() - self.box_top()).max(0) as u32
    }

    /// Draws the text with its ink box's left edge at `x` and the line box's
    /// top at `y`. Ink lands inside `[x, x + width) × [y, y + box_height)`.
    pub fn draw(&self, canvas: &mut Canvas, x: u32, y: u32) {
        let origin_x = i64::from(x) - i64::from(self.left);
        let baseline = i64::from(y) - i64::from(self.box_top());
        for g in &self.glyphs {
            let b = g.px_bounds();
            let gx = origin_x + b.min.x as i64;
            let gy = baseline + b.min.y as i64;
            g.draw(|px, py, cov| {
                if cov > 0.5 {
                    let (dx, dy) = (gx + i64::from(px), gy + i64::from(py));
                    if let (Ok(dx), Ok(dy)) = (u32::try_from(dx), u32::try_from(dy)) {
                        canvas.set(dx, dy);
                    }
                }
            });
        }
    }
}

/// Shapes `text` at pixel scale `scale` (across the media); `x_ratio`
/// stretches along the feed for media whose feed resolution differs from the
/// head's (1.0 for square dots).
pub fn shape(text: &str, weight: Weight, scale: f32, x_ratio: f32) -> Result<Text, RenderError> {
    let font = font(weight)?;
    let px = PxScale {
        x: scale * x_ratio,
        y: scale,
    };
    let scaled = font.as_scaled(px);
    let mut glyphs = Vec::with_capacity(text.len());
    let (mut left, mut top, mut right, mut bottom) = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
    let mut pen = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(px, ab_glyph::point(pen.round(), 0.0));
        pen += scaled.h_advance(id);
        prev = Some(id);
        if let Some(outlined) = font.outline_glyph(glyph) {
            let b = outlined.px_bounds();
            left = left.min(b.min.x as i32);
            top = top.min(b.min.y as i32);
            right = right.max(b.max.x as i32);
            bottom = bottom.max(b.max.y as i32);
            glyphs.push(outlined);
        }
    }
    if glyphs.is_empty() {
        (left, top, right, bottom) = (0, 0, 0, 0);
    }
    let cap_top = font
        .outline_glyph(font.glyph_id('H').with_scale(px))
        .map_or(-(scale * 0.63).round() as i32, |g| {
            g.px_bounds().min.y as i32
        });
    Ok(Text {
        glyphs,
        left,
        top,
        right,
        bottom,
        cap_top,
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_parse_and_cover_latin() {
        assert!(has_glyph('A') && has_glyph('ß') && has_glyph('€') && has_glyph(' '));
        assert!(!has_glyph('\u{4E2D}'));
    }

    #[test]
    fn ink_stays_inside_the_measured_box() {
        for (text, weight) in [("Ågjy|Q", Weight::Regular), ("W-42 É", Weight::Bold)] {
            for scale in [9.0, 17.0, 40.0, 130.0] {
                let t = shape(text, weight, scale, 1.0).unwrap();
                let w = t.width() + 4;
                let h = t.box_height() + 4;
                let mut bmp = Canvas::new(w, h);
                t.draw(&mut bmp, 2, 2);
                assert!(bmp.count_ink() > 0, "{text} at {scale}");
                for y in 0..h {
                    for x in 0..w {
                        if bmp.get(x, y) {
                            assert!(
                                (2..w - 2).contains(&x) && (2..h - 2).contains(&y),
                                "ink outside box at ({x},{y}) for {text} at {scale}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn wider_at_larger_scale_and_bold_is_darker() {
        let small = shape("Label", Weight::Regular, 20.0, 1.0).unwrap();
        let big = shape("Label", Weight::Regular, 40.0, 1.0).unwrap();
        assert!(big.width() > small.width() * 3 / 2);
        let ink = |w| {
            let t = shape("Label", w, 40.0, 1.0).unwrap();
            let mut bmp = Canvas::new(t.width(), t.box_height());
            t.draw(&mut bmp, 0, 0);
            bmp.count_ink()
        };
        assert!(ink(Weight::Bold) > ink(Weight::Regular) * 5 / 4);
        let empty = shape("   ", Weight::Regular, 20.0, 1.0).unwrap();
        assert_eq!(empty.width(), 0);
        assert!(empty.box_height() > 0);
    }
}
