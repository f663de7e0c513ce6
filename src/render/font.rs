//! Embedded fonts and text shaping: DejaVu Sans regular and bold (from the
//! `dejavu` crate, compiled into the binary), laid out and rasterised with
//! `ab_glyph`.
//!
//! A line is shaped once (`Shaped::new`: glyph ids, unscaled outlines,
//! advances and kerning) and can then be measured at any scale for the cost
//! of a little arithmetic, which is what lets layout search for the largest
//! size that fits without re-reading the font.
//!
//! **Sizes** are ab_glyph pixel scales: the font's ascent-to-descent height
//! in dots (for DejaVu Sans the cap height is about 0.63 of it).
//!
//! **Invariants.** `Extents` is the exact union of ab_glyph's pixel bounds
//! (rounded outwards) of the glyphs as `draw` places them, so a caller that
//! keeps the box inside the canvas never clips ink. Glyph origins sit on
//! whole dots (the pen position is rounded per glyph) so repeated letters
//! rasterise identically; coverage is thresholded at one half, which keeps
//! 1-bit stems crisp at 180–360 dpi.
//!
//! Because glyph origins are whole dots, a glyph's 1-bit image depends only
//! on (weight, glyph, scale), so rasterised glyphs are kept in a small
//! process-wide cache (bounded by `GLYPH_CACHE_BYTES`, emptied when full):
//! the labels of a batch share their glyphs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ab_glyph::{Font, FontRef, Glyph, GlyphId, Outline, OutlinedGlyph, PxScale, PxScaleFactor};

use super::error::RenderError;
use crate::bitmap::Bitmap;

/// Regular for titles and lists, bold for the primary id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weight {
    Regular,
    Bold,
}

struct Face {
    font: FontRef<'static>,
    /// Unscaled outline of `H`, for the cap height.
    cap: Option<Outline>,
}

static REGULAR: OnceLock<Option<Face>> = OnceLock::new();
static BOLD: OnceLock<Option<Face>> = OnceLock::new();

fn face(weight: Weight) -> Result<&'static Face, RenderError> {
    let load = |bytes: &'static [u8]| {
        let font = FontRef::try_from_slice(bytes).ok()?;
        let cap = font.outline(font.glyph_id('H'));
        Some(Face { font, cap })
    };
    let slot = match weight {
        Weight::Regular => REGULAR.get_or_init(|| load(dejavu::sans::regular())),
        Weight::Bold => BOLD.get_or_init(|| load(dejavu::sans::bold())),
    };
    slot.as_ref().ok_or(RenderError::Internal {
        reason: "embedded font does not parse",
    })
}

/// A rasterised glyph: 1-bit ink and its offset from the pen position on
/// the baseline.
struct GlyphImage {
    left: i32,
    top: i32,
    ink: Bitmap,
}

type GlyphKey = (Weight, u16, u32, u32);

/// Upper bound of the glyph cache's pixel data.
const GLYPH_CACHE_BYTES: usize = 4 << 20;

struct GlyphCache {
    map: HashMap<GlyphKey, Arc<GlyphImage>>,
    bytes: usize,
}

static GLYPH_CACHE: OnceLock<Mutex<GlyphCache>> = OnceLock::new();

fn glyph_cache() -> &'static Mutex<GlyphCache> {
    GLYPH_CACHE.get_or_init(|| {
        Mutex::new(GlyphCache {
            map: HashMap::new(),
            bytes: 0,
        })
    })
}

/// Empties the glyph and outline caches (benchmarks use it to time cold
/// renders).
pub fn clear_caches() {
    if let Ok(mut cache) = glyph_cache().lock() {
        cache.map.clear();
        cache.bytes = 0;
    }
    if let Some(Ok(mut outlines)) = OUTLINES.get().map(Mutex::lock) {
        outlines.clear();
    }
}

fn rasterise(outline: &Outline, id: GlyphId, px: PxScale, sf: PxScaleFactor) -> GlyphImage {
    let glyph = Glyph {
        id,
        scale: px,
        position: ab_glyph::point(0.0, 0.0),
    };
    let outlined = OutlinedGlyph::new(glyph, outline.clone(), sf);
    let b = outlined.px_bounds();
    let (w, h) = ((b.max.x - b.min.x) as u32, (b.max.y - b.min.y) as u32);
    let mut ink = Bitmap::new(w, h);
    outlined.draw(|x, y, cov| {
        if cov > 0.5 {
            ink.set(x, y, true);
        }
    });
    GlyphImage {
        left: b.min.x as i32,
        top: b.min.y as i32,
        ink,
    }
}

fn glyph_image(
    weight: Weight,
    outline: &Outline,
    id: GlyphId,
    px: PxScale,
    sf: PxScaleFactor,
) -> Arc<GlyphImage> {
    let key = (weight, id.0, px.y.to_bits(), px.x.to_bits());
    if let Some(hit) = glyph_cache()
        .lock()
        .ok()
        .and_then(|c| c.map.get(&key).cloned())
    {
        return hit;
    }
    let img = Arc::new(rasterise(outline, id, px, sf));
    if let Ok(mut cache) = glyph_cache().lock() {
        let size = img.ink.as_bytes().len();
        if cache.bytes + size > GLYPH_CACHE_BYTES {
            cache.map.clear();
            cache.bytes = 0;
        }
        cache.bytes += size;
        cache.map.insert(key, Arc::clone(&img));
    }
    img
}

/// Most glyph outlines kept (DejaVu Sans has about 6000 glyphs per weight).
const OUTLINE_CACHE_LEN: usize = 4096;

type OutlineCache = HashMap<(Weight, u16), Option<Arc<Outline>>>;

static OUTLINES: OnceLock<Mutex<OutlineCache>> = OnceLock::new();

/// The unscaled outline of a glyph (`None` for blank glyphs), parsed once.
fn outline(weight: Weight, font: &FontRef<'static>, id: GlyphId) -> Option<Arc<Outline>> {
    let cache = OUTLINES.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&(weight, id.0)).cloned())
    {
        return hit;
    }
    let parsed = font.outline(id).map(Arc::new);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= OUTLINE_CACHE_LEN {
            c.clear();
        }
        c.insert((weight, id.0), parsed.clone());
    }
    parsed
}

/// `true` when both weights have a real glyph (not `.notdef`) for `c`.
pub fn has_glyph(c: char) -> bool {
    [Weight::Regular, Weight::Bold]
        .into_iter()
        .all(|w| face(w).is_ok_and(|f| f.font.glyph_id(c) != GlyphId(0)))
}

/// Measured ink of a line at one scale. Coordinates are relative to the pen
/// origin: `x = 0` where the pen starts, `y = 0` on the baseline, `y`
/// growing downwards; right/bottom are exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extents {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
    /// Top of a capital `H` at this scale (negative: above the baseline).
    pub cap_top: i32,
}

impl Extents {
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
}

struct ShapedGlyph {
    id: GlyphId,
    outline: Option<Arc<Outline>>,
    /// Unscaled pen advance from this glyph's origin to the next one's,
    /// including the kerning with the next glyph.
    advance: f32,
}

/// A line of text shaped once, to be measured and drawn at any scale.
pub struct Shaped {
    weight: Weight,
    face: &'static Face,
    glyphs: Vec<ShapedGlyph>,
}

impl Shaped {
    pub fn new(text: &str, weight: Weight) -> Result<Shaped, RenderError> {
        let face = face(weight)?;
        let font = &face.font;
        let ids: Vec<GlyphId> = text.chars().map(|c| font.glyph_id(c)).collect();
        let glyphs = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let kern = ids
                    .get(i + 1)
                    .map_or(0.0, |&next| font.kern_unscaled(id, next));
                ShapedGlyph {
                    id,
                    outline: outline(weight, font, id),
                    advance: font.h_advance_unscaled(id) + kern,
                }
            })
            .collect();
        Ok(Shaped {
            weight,
            face,
            glyphs,
        })
    }

    fn factors(&self, scale: f32, x_ratio: f32) -> (PxScale, PxScaleFactor) {
        let h = self.face.font.height_unscaled();
        let px = PxScale {
            x: scale * x_ratio,
            y: scale,
        };
        (
            px,
            PxScaleFactor {
                horizontal: px.x / h,
                vertical: px.y / h,
            },
        )
    }

    /// Whole-dot pen positions of each glyph at this scale.
    fn pens(&self, sf: PxScaleFactor) -> impl Iterator<Item = (&ShapedGlyph, f32)> + '_ {
        let mut pen = 0.0f32;
        self.glyphs.iter().map(move |g| {
            let x = pen.round();
            pen += g.advance * sf.horizontal;
            (g, x)
        })
    }

    /// The ink box at `scale` (`x_ratio` stretches along the feed for media
    /// whose feed resolution differs from the head's; 1.0 for square dots).
    pub fn measure(&self, scale: f32, x_ratio: f32) -> Extents {
        let (_, sf) = self.factors(scale, x_ratio);
        let (mut left, mut top, mut right, mut bottom) = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
        for (g, x) in self.pens(sf) {
            if let Some(o) = &g.outline {
                let b = o.px_bounds(sf, ab_glyph::point(x, 0.0));
                if b.max.x > b.min.x && b.max.y > b.min.y {
                    left = left.min(b.min.x as i32);
                    top = top.min(b.min.y as i32);
                    right = right.max(b.max.x as i32);
                    bottom = bottom.max(b.max.y as i32);
                }
            }
        }
        if left > right {
            (left, top, right, bottom) = (0, 0, 0, 0);
        }
        let cap_top = self
            .face
            .cap
            .as_ref()
            .map_or(-(scale * 0.63).round() as i32, |o| {
                o.px_bounds(sf, ab_glyph::point(0.0, 0.0)).min.y as i32
            });
        Extents {
            left,
            top,
            right,
            bottom,
            cap_top,
        }
    }

    /// Draws the line at `scale` with its ink box's left edge at `x` and its
    /// line box's top at `y`. Ink lands inside
    /// `[x, x + width) × [y, y + box_height)` of `measure(scale)`.
    pub fn draw(&self, scale: f32, x_ratio: f32, canvas: &mut Bitmap, x: u32, y: u32) {
        let ext = self.measure(scale, x_ratio);
        let (px, sf) = self.factors(scale, x_ratio);
        let origin_x = i64::from(x) - i64::from(ext.left);
        let baseline = i64::from(y) - i64::from(ext.box_top());
        for (g, pen) in self.pens(sf) {
            let Some(outline) = &g.outline else {
                continue;
            };
            let img = glyph_image(self.weight, outline, g.id, px, sf);
            let gx = origin_x + pen as i64 + i64::from(img.left);
            let gy = baseline + i64::from(img.top);
            match (u32::try_from(gx), u32::try_from(gy)) {
                (Ok(gx), Ok(gy)) => canvas.draw(&img.ink, gx, gy),
                // Partly left of or above the canvas: clip dot by dot.
                _ => {
                    for iy in 0..img.ink.height() {
                        for ix in 0..img.ink.width() {
                            let (cx, cy) = (gx + i64::from(ix), gy + i64::from(iy));
                            if img.ink.get(ix, iy) && cx >= 0 && cy >= 0 {
                                canvas.set(cx as u32, cy as u32, true);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A shaped line at a chosen scale, with its measured extents.
pub struct Text {
    shaped: Shaped,
    pub scale: f32,
    x_ratio: f32,
    pub ext: Extents,
}

impl Text {
    pub fn new(shaped: Shaped, scale: f32, x_ratio: f32) -> Text {
        let ext = shaped.measure(scale, x_ratio);
        Text {
            shaped,
            scale,
            x_ratio,
            ext,
        }
    }

    /// The same line at another scale.
    pub fn at(self, scale: f32) -> Text {
        Text::new(self.shaped, scale, self.x_ratio)
    }

    pub fn width(&self) -> u32 {
        self.ext.width()
    }

    pub fn box_top(&self) -> i32 {
        self.ext.box_top()
    }

    pub fn box_bottom(&self) -> i32 {
        self.ext.box_bottom()
    }

    pub fn box_height(&self) -> u32 {
        self.ext.box_height()
    }

    /// Draws with the ink's left edge at `x` and the line box's top at `y`.
    pub fn draw(&self, canvas: &mut Bitmap, x: u32, y: u32) {
        self.shaped.draw(self.scale, self.x_ratio, canvas, x, y);
    }
}

/// Shapes and measures `text` at `scale`.
pub fn shape(text: &str, weight: Weight, scale: f32, x_ratio: f32) -> Result<Text, RenderError> {
    Ok(Text::new(Shaped::new(text, weight)?, scale, x_ratio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_parse_and_cover_latin() {
        assert!(has_glyph('A') && has_glyph('ß') && has_glyph('€') && has_glyph(' '));
        assert!(!has_glyph('\u{4E2D}'));
    }

    fn ink(text: &str, weight: Weight, scale: f32) -> (Bitmap, Extents) {
        let s = Shaped::new(text, weight).unwrap();
        let e = s.measure(scale, 1.0);
        let mut c = Bitmap::new(e.width() + 4, e.box_height() + 4);
        s.draw(scale, 1.0, &mut c, 2, 2);
        (c, e)
    }

    #[test]
    fn ink_stays_inside_the_measured_box() {
        for (text, weight) in [("Ågjy|Q", Weight::Regular), ("W-42 É", Weight::Bold)] {
            for scale in [9.0, 17.0, 40.0, 130.0] {
                let (c, e) = ink(text, weight, scale);
                let (w, h) = (e.width() + 4, e.box_height() + 4);
                assert!(c.count_ink() > 0, "{text} at {scale}");
                for y in 0..h {
                    for x in 0..w {
                        if c.get(x, y) {
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
        let s = Shaped::new("Label", Weight::Regular).unwrap();
        let (small, big) = (s.measure(20.0, 1.0), s.measure(40.0, 1.0));
        assert!(big.width() > small.width() * 3 / 2);
        let (bold, _) = ink("Label", Weight::Bold, 40.0);
        let (regular, _) = ink("Label", Weight::Regular, 40.0);
        assert!(bold.count_ink() > regular.count_ink() * 5 / 4);
        let empty = Shaped::new("   ", Weight::Regular)
            .unwrap()
            .measure(20.0, 1.0);
        assert_eq!(empty.width(), 0);
        assert!(empty.box_height() > 0);
    }
}
