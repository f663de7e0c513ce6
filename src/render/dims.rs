//! `Dims`: the few numbers of a model + medium pair that layout needs, taken
//! from `brother::media::Geometry` (the one media table) by `Target`. Layout
//! code sees only this struct, so it can be tested on made-up media.

/// Canvas geometry in dots, label orientation (see `bitmap`): `height` runs
/// across the media, lengths run along the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Printable dots across the media (= bitmap height).
    pub height: u32,
    /// Head resolution across the media.
    pub dpi_across: u32,
    /// Normal-resolution dots per inch along the feed.
    pub dpi_feed: u32,
    /// Die-cut labels: the exact printable length (= bitmap width).
    pub fixed_length: Option<u32>,
    /// Endless media: shortest and longest label the printer takes.
    pub min_length: u32,
    pub max_length: u32,
    /// A red layer is available (62red on a two-colour model).
    pub two_colour: bool,
}

/// Minimum legible text: an ab_glyph scale of 1.6 mm (cap height about
/// 1 mm, roughly 5 pt type), and never below 10 dots.
const MIN_TEXT_MM: f32 = 1.6;
const MIN_TEXT_DOTS: f32 = 10.0;

/// Narrowest module a code may have: 0.125 mm (5 mil), the usual minimum
/// X dimension of 2D imagers and good laser scanners. One dot at 180 dpi,
/// two at 300 and 360 dpi.
const MIN_MODULE_MM: f32 = 0.125;

impl Dims {
    /// Smallest module across the media, in whole dots.
    pub fn min_module_across(&self) -> u32 {
        ((MIN_MODULE_MM * self.dpi_across as f32 / 25.4).ceil() as u32).max(1)
    }

    /// Smallest module along the feed, in whole dots.
    pub fn min_module_along(&self) -> u32 {
        ((MIN_MODULE_MM * self.dpi_feed as f32 / 25.4).ceil() as u32).max(1)
    }

    /// `mm` across the media, in whole dots (at least 1).
    pub fn across(&self, mm: f32) -> u32 {
        ((mm * self.dpi_across as f32 / 25.4).round() as u32).max(1)
    }

    /// `mm` along the feed, in whole dots (at least 1).
    pub fn along(&self, mm: f32) -> u32 {
        ((mm * self.dpi_feed as f32 / 25.4).round() as u32).max(1)
    }

    /// Dots along the feed per dot across (1.0 for square dots).
    pub fn x_ratio(&self) -> f32 {
        self.dpi_feed as f32 / self.dpi_across as f32
    }

    /// Smallest text scale the renderer will print.
    pub fn min_text_scale(&self) -> f32 {
        (MIN_TEXT_MM * self.dpi_across as f32 / 25.4)
            .round()
            .max(MIN_TEXT_DOTS)
    }

    /// The longest the content may be: the die-cut length, else the
    /// medium's maximum.
    pub fn length_limit(&self) -> u32 {
        self.fixed_length.unwrap_or(self.max_length)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PT 12 mm tape on a 180 dpi head.
    pub fn pt12() -> Dims {
        Dims {
            height: 70,
            dpi_across: 180,
            dpi_feed: 180,
            fixed_length: None,
            min_length: 31,
            max_length: 7086,
            two_colour: false,
        }
    }

    #[test]
    fn conversions() {
        let d = pt12();
        assert_eq!(d.across(25.4), 180);
        assert_eq!(d.min_text_scale(), 11.0);
        let ql = Dims {
            dpi_across: 300,
            dpi_feed: 300,
            ..d
        };
        assert_eq!(ql.min_text_scale(), 19.0);
        assert_eq!((d.min_module_across(), ql.min_module_across()), (1, 2));
        assert_eq!(d.length_limit(), 7086);
    }
}
