//! The printer model table: every Brother PT/QL model in the protocol
//! reference's model matrix (`brother-raster.md` §6, §3.1, §2), as data.
//!
//! **Invariant:** this file is the only place that knows per-model facts
//! (head size, bytes per raster line, resolution, which optional commands a
//! model takes, its status codes). The encoder, decoder, emulator and status
//! parser look them up here; none of them branch on a model name.
//!
//! Values marked "community" in a comment come from transcriptions or
//! third-party captures, not from a Brother manual or driver capture.

use std::fmt;

/// Printer family: P-touch tape printers or QL label printers. The families
/// differ in the raster command (`G` vs `g`), image orientation and media.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Pt,
    Ql,
}

impl Family {
    /// `"pt"` or `"ql"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Pt => "pt",
            Family::Ql => "ql",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One printer model. All fields are facts about the hardware and the
/// commands it accepts; options of a job live in `encode::Options`.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Model {
    /// Canonical name, e.g. `"PT-P750W"`, `"QL-820NWB"`.
    pub name: &'static str,
    pub family: Family,
    /// Print head pins: 128, 560, 720 or 1296.
    pub pins: u16,
    /// Bytes per uncompressed raster line: `pins / 8` (16, 70, 90, 162).
    pub bytes_per_line: u16,
    /// Resolution across the head and (at normal resolution) along the feed.
    pub dpi: u16,
    /// Resolution along the feed with high resolution on (`ESC i K` bit 6),
    /// `None` when the model has no high-resolution mode.
    pub high_res_dpi: Option<u16>,
    /// Takes TIFF PackBits raster lines (`M 02`).
    pub compression: bool,
    /// Takes the `Z` blank-line command (only ever with compression on).
    pub blank_line_cmd: bool,
    /// Has an automatic cutter (`ESC i M` bit 6).
    pub cutter: bool,
    /// Takes `ESC i A n` (cut after every n labels).
    pub cut_every: bool,
    /// Can half-cut (`ESC i K` bit 2, PT only).
    pub half_cut: bool,
    /// Supports chain printing (`ESC i K` bit 3 cleared, PT only).
    pub chain: bool,
    /// Prints black and red on DK-22251 (`w` raster lines, `ESC i K` bit 0).
    pub two_colour: bool,
    /// Takes `ESC i a 01` (switch to raster mode). QL-500/550/560/570/700 are
    /// raster-only and do not implement it.
    pub mode_switch: bool,
    /// Takes `ESC i K` (PT advanced mode / QL expanded mode).
    pub expanded_mode: bool,
    /// `ESC i z` n9 is 2 for the last page (PT-P900 family), not 1.
    pub last_page_marker: bool,
    /// Status block byte 4.
    pub status_code: u8,
    /// Status block byte 3 (PT: always `0x30`).
    pub series_code: u8,
    /// Number of NULs Brother's manual asks for before `ESC @`.
    pub invalidate_bytes: u16,
    /// Nominal print speed in mm/s (the emulator's real-speed mode).
    pub speed_mm_s: u16,
    /// Shortest endless/tape label in raster lines at normal resolution.
    pub min_length_dots: u32,
    /// Longest endless/tape label in raster lines at normal resolution.
    pub max_length_dots: u32,
    /// Allowed `ESC i d` feed margin in dots at normal resolution
    /// (endless and tape media; die-cut QL labels always use 0).
    pub margin_range: (u16, u16),
    /// USB product id (vendor 0x04F9) in normal (not P-Lite) mode, where known.
    pub usb_product_id: Option<u16>,
    /// Takes the 104 mm wide DK media (DK-22246 103.6 mm roll, DK-11247
    /// 103 x 164 mm labels). Brother lists them for the QL-1100 series only:
    /// the "Raster Command Reference QL-1100/1110NWB/1115NWB v1.00" covers
    /// all three models and its worked example is the DK-11247 label
    /// (`ESC i z 8E 0B 68 A4 1E 07 00 00 00 00`: 104 mm x 164 mm, 1822
    /// lines). The QL-1050/1060N reference (v6.0, 2011) predates them and
    /// tops out at 102 mm; brother-label 2.0 lists them for "QL-11" only.
    pub wide_104mm: bool,
}

impl Model {
    /// Bytes in one uncompressed raster line (`bytes_per_line` as `usize`).
    pub fn head_bytes(&self) -> usize {
        usize::from(self.bytes_per_line)
    }
}

const PT_SERIES: u8 = 0x30;

/// The P-touch base: every field, for the 128-pin, 180-dpi head (the other
/// PT head starts from it). Length limits: 31 (4.4 mm) .. 7086 (1 m) lines;
/// margin 14 (2 mm) .. 900 (127 mm) [spec].
const fn pt128(name: &'static str, status_code: u8, usb: u16) -> Model {
    Model {
        name,
        family: Family::Pt,
        pins: 128,
        bytes_per_line: 16,
        dpi: 180,
        high_res_dpi: Some(360),
        compression: true,
        blank_line_cmd: true,
        cutter: true,
        cut_every: true,
        half_cut: true,
        chain: true,
        two_colour: false,
        mode_switch: true,
        expanded_mode: true,
        last_page_marker: false,
        status_code,
        series_code: PT_SERIES,
        invalidate_bytes: 100,
        speed_mm_s: 30,
        min_length_dots: 31,
        max_length_dots: 7086,
        margin_range: (14, 900),
        usb_product_id: Some(usb),
        wide_104mm: false,
    }
}

/// The 560-pin, 360-dpi PT-P900 family: the P-touch base with this head.
/// Length limits are the 128-pin figures scaled to 360 dpi (4.4 mm .. 1 m);
/// margin 14 (1 mm) .. 1800 [community transcription of the P900 manual].
const fn pt560(name: &'static str, status_code: u8, usb: u16) -> Model {
    Model {
        pins: 560,
        bytes_per_line: 70,
        dpi: 360,
        high_res_dpi: Some(720),
        last_page_marker: true,
        invalidate_bytes: 200,
        speed_mm_s: 60,
        min_length_dots: 62,
        max_length_dots: 14172,
        margin_range: (14, 1800),
        ..pt128(name, status_code, usb)
    }
}

/// The QL base: every field, for the 720-pin (62 mm) head (the other QL head
/// starts from it): 300 dpi, 90 bytes per line, 600 dpi along the feed,
/// compression and `Z`; length 150..11811 lines (QL-570 and later [bql]);
/// feed margin 35..1500.
const fn ql720(name: &'static str, series: u8, code: u8, usb: u16, speed: u16) -> Model {
    Model {
        name,
        family: Family::Ql,
        pins: 720,
        bytes_per_line: 90,
        dpi: 300,
        high_res_dpi: Some(600),
        compression: true,
        blank_line_cmd: true,
        cutter: true,
        cut_every: true,
        half_cut: false,
        chain: false,
        two_colour: false,
        mode_switch: true,
        expanded_mode: true,
        last_page_marker: false,
        status_code: code,
        series_code: series,
        invalidate_bytes: 200,
        speed_mm_s: speed,
        min_length_dots: 150,
        max_length_dots: 11811,
        margin_range: (35, 1500),
        usb_product_id: Some(usb),
        wide_104mm: false,
    }
}

/// The 1296-pin (102 mm) QL heads: the QL base with this head, 162 bytes
/// per line, no 600-dpi mode listed [community tables].
const fn ql1296(name: &'static str, series: u8, code: u8, usb: u16) -> Model {
    Model {
        pins: 1296,
        bytes_per_line: 162,
        high_res_dpi: None,
        invalidate_bytes: 350,
        min_length_dots: 301,
        max_length_dots: 35434,
        ..ql720(name, series, code, usb, 110)
    }
}

/// The model table, PT first, in the order of the reference's matrix.
pub static MODELS: &[Model] = &[
    // --- PT, 128-pin head -------------------------------------------------
    pt128("PT-P700", 0x67, 0x2061).without_pro_features(),
    pt128("PT-P750W", 0x68, 0x2062),
    pt128("PT-E550W", 0x66, 0x2060),
    // Raster mode only but accepts ESC i a; no ESC i A, no half cut [spec].
    // Status code 0x76 is from a community Bluetooth capture.
    Model {
        cut_every: false,
        half_cut: false,
        ..pt128("PT-P710BT", 0x76, 0x20AF)
    },
    pt128("PT-H500", 0x64, 0x205E).without_pro_features(),
    pt128("PT-E500", 0x65, 0x205F).without_pro_features(),
    // Community only: libptouch reports it works with quirks.
    pt128("PT-D600", 0x6A, 0x2074).without_pro_features(),
    // --- PT, 560-pin head -------------------------------------------------
    pt560("PT-P900", 0x71, 0x2083),
    pt560("PT-P900W", 0x69, 0x2085),
    pt560("PT-P950NW", 0x70, 0x2086),
    // No high resolution (and no draft) on the P910BT [spec].
    Model {
        high_res_dpi: None,
        ..pt560("PT-P910BT", 0x78, 0x20C7)
    },
    // --- QL, 720-pin head -------------------------------------------------
    // QL-500: no cutter, no ESC i K, no ESC i a, no compression, 295 min.
    Model {
        cutter: false,
        cut_every: false,
        expanded_mode: false,
        ..ql720("QL-500", 0x30, 0x4F, 0x2015, 50).raster_only()
    },
    ql720("QL-550", 0x30, 0x4F, 0x2016, 90).raster_only(),
    ql720("QL-560", 0x34, 0x31, 0x2027, 100).raster_only(),
    Model {
        compression: false,
        blank_line_cmd: false,
        mode_switch: false,
        ..ql720("QL-570", 0x34, 0x32, 0x2028, 100)
    },
    ql720("QL-580N", 0x34, 0x33, 0x2029, 110),
    // QL-600: not in brother_ql; brother-ql-next lists it without
    // compression. Status codes from the oracle's table.
    Model {
        compression: false,
        blank_line_cmd: false,
        usb_product_id: None,
        ..ql720("QL-600", 0x34, 0x47, 0, 150)
    },
    // QL-650TD: compression only on its serial port, so never on USB/LAN.
    Model {
        high_res_dpi: None,
        compression: false,
        blank_line_cmd: false,
        min_length_dots: 295,
        ..ql720("QL-650TD", 0x30, 0x51, 0x201B, 100)
    },
    Model {
        compression: false,
        blank_line_cmd: false,
        mode_switch: false,
        ..ql720("QL-700", 0x34, 0x35, 0x2042, 150)
    },
    ql720("QL-710W", 0x34, 0x36, 0x2043, 150),
    ql720("QL-720NW", 0x34, 0x37, 0x2044, 150),
    // QL-800: two-colour, but no `M` and no `Z` [spec].
    Model {
        compression: false,
        blank_line_cmd: false,
        ..ql720("QL-800", 0x34, 0x38, 0x209B, 148).with_red()
    },
    ql720("QL-810W", 0x34, 0x39, 0x209C, 110).with_red(),
    ql720("QL-820NWB", 0x34, 0x41, 0x209D, 110).with_red(),
    // --- QL, 1296-pin head ------------------------------------------------
    Model {
        min_length_dots: 295,
        max_length_dots: 35433,
        ..ql1296("QL-1050", 0x30, 0x50, 0x2020)
    },
    Model {
        min_length_dots: 295,
        max_length_dots: 35433,
        invalidate_bytes: 200,
        ..ql1296("QL-1060N", 0x34, 0x34, 0x202A)
    },
    Model {
        wide_104mm: true,
        ..ql1296("QL-1100", 0x34, 0x43, 0x20A7)
    },
    Model {
        wide_104mm: true,
        ..ql1296("QL-1110NWB", 0x34, 0x44, 0x20A8)
    },
    Model {
        wide_104mm: true,
        ..ql1296("QL-1115NWB", 0x34, 0x45, 0x20AB)
    },
];

impl Model {
    /// The entry-level PT models (P700, H500, E500, D600): no high
    /// resolution, no half cut, and no `ESC i A` (the P700 driver omits it).
    const fn without_pro_features(self) -> Model {
        Model {
            high_res_dpi: None,
            half_cut: false,
            cut_every: false,
            ..self
        }
    }

    /// The early raster-only QLs (QL-500/550/560): no high resolution, no
    /// compression (so no `Z`), no `ESC i a`, labels of 295 lines at least.
    const fn raster_only(self) -> Model {
        Model {
            high_res_dpi: None,
            compression: false,
            blank_line_cmd: false,
            mode_switch: false,
            min_length_dots: 295,
            ..self
        }
    }

    /// The two-colour QL-8xx: black and red on DK-22251, 400 NULs to
    /// invalidate.
    const fn with_red(self) -> Model {
        Model {
            two_colour: true,
            invalidate_bytes: 400,
            ..self
        }
    }
}

/// Every known model.
pub fn all() -> &'static [Model] {
    MODELS
}

/// Looks a model up by name, ignoring case, and accepting the name without
/// the `PT-`/`QL-` prefix (`"pt-p750w"`, `"P750W"`, `"820nwb"` all work).
pub fn by_name(name: &str) -> Option<&'static Model> {
    let wanted = name.trim();
    MODELS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(wanted))
        .or_else(|| {
            MODELS
                .iter()
                .find(|m| m.name[3..].eq_ignore_ascii_case(wanted))
        })
}

/// Looks a model up by the status block's series (byte 3) and model code
/// (byte 4). QL-500 and QL-550 share `30/4F`; the first (QL-500) is returned.
pub fn by_status_code(series: u8, code: u8) -> Option<&'static Model> {
    MODELS
        .iter()
        .find(|m| m.series_code == series && m.status_code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for m in all() {
            assert_eq!(m.pins, m.bytes_per_line * 8, "{}", m.name);
            assert!(!m.blank_line_cmd || m.compression, "{}: Z needs M", m.name);
            assert!(!m.cut_every || m.cutter, "{}", m.name);
            assert!(!m.two_colour || m.family == Family::Ql, "{}", m.name);
            assert!(m.min_length_dots < m.max_length_dots, "{}", m.name);
            assert_eq!(by_name(m.name), Some(m), "{}", m.name);
            let prefix = match m.family {
                Family::Pt => "PT-",
                Family::Ql => "QL-",
            };
            assert!(m.name.starts_with(prefix), "{}", m.name);
        }
        assert_eq!(all().len(), 11 + 18);
    }

    #[test]
    fn lookups() {
        assert_eq!(by_name("pt-p750w").map(|m| m.name), Some("PT-P750W"));
        assert_eq!(by_name("820nwb").map(|m| m.name), Some("QL-820NWB"));
        assert_eq!(by_name(" QL-1110NWB ").map(|m| m.pins), Some(1296));
        assert!(by_name("QL-9999").is_none());
        assert!(by_name("").is_none());
        assert_eq!(by_status_code(0x30, 0x68).map(|m| m.name), Some("PT-P750W"));
        assert_eq!(
            by_status_code(0x34, 0x41).map(|m| m.name),
            Some("QL-820NWB")
        );
        assert_eq!(by_status_code(0x30, 0x4F).map(|m| m.name), Some("QL-500"));
        assert!(by_status_code(0x34, 0x68).is_none());
    }

    #[test]
    fn matrix_facts() {
        let qn = |n| by_name(n).unwrap();
        assert!(!qn("QL-800").compression && qn("QL-800").two_colour);
        assert!(qn("QL-820NWB").compression && qn("QL-820NWB").two_colour);
        assert!(!qn("QL-500").cutter && !qn("QL-500").mode_switch);
        assert_eq!(qn("QL-820NWB").invalidate_bytes, 400);
        assert_eq!(qn("QL-1050").invalidate_bytes, 350);
        assert_eq!(qn("PT-P750W").invalidate_bytes, 100);
        assert_eq!(qn("PT-P900W").invalidate_bytes, 200);
        assert_eq!(qn("PT-P910BT").high_res_dpi, None);
        assert_eq!(qn("PT-P750W").high_res_dpi, Some(360));
        assert!(!qn("PT-P710BT").half_cut && !qn("PT-P710BT").cut_every);
        assert!(qn("PT-P900W").last_page_marker && !qn("PT-P750W").last_page_marker);
    }
}
