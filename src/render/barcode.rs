//! 1D barcodes: Code 128 (code sets B and C, chosen by a shortest-symbol
//! search) and EAN-13, with human-readable text under the bars.
//!
//! Both symbologies are small fixed tables and a checksum, written here so
//! that the code set choice and the text placement are ours; the tests decode
//! the drawn pixels with an independent decoder (rxing).
//!
//! **Invariants.** Every module is the same whole number of dots along the
//! feed; the quiet zones of the spec (Code 128: 10 modules each side; EAN-13:
//! 11 left, 7 right) are inside the drawn cell; the text never overlaps the
//! bars and is never clipped (it shrinks to the minimum legible size, else
//! the request is refused naming `barcode`).

use super::data::BarcodeType;
use super::dims::Dims;
use super::error::RenderError;
use super::font::{self, Shaped, Text, Weight};
use crate::bitmap::Bitmap;

/// Target module width (EAN-13's nominal X dimension is 0.33 mm).
const MODULE_MM: f32 = 0.33;
/// Largest human-readable text scale.
const MAX_HRT_MM: f32 = 5.0;

/// Code 128 bar/space widths for symbol values 0..=105 (6 elements each,
/// bar first, 11 modules); the stop symbol is separate.
const CODE128: [[u8; 6]; 106] = [
    [2, 1, 2, 2, 2, 2],
    [2, 2, 2, 1, 2, 2],
    [2, 2, 2, 2, 2, 1],
    [1, 2, 1, 2, 2, 3],
    [1, 2, 1, 3, 2, 2],
    [1, 3, 1, 2, 2, 2],
    [1, 2, 2, 2, 1, 3],
    [1, 2, 2, 3, 1, 2],
    [1, 3, 2, 2, 1, 2],
    [2, 2, 1, 2, 1, 3],
    [2, 2, 1, 3, 1, 2],
    [2, 3, 1, 2, 1, 2],
    [1, 1, 2, 2, 3, 2],
    [1, 2, 2, 1, 3, 2],
    [1, 2, 2, 2, 3, 1],
    [1, 1, 3, 2, 2, 2],
    [1, 2, 3, 1, 2, 2],
    [1, 2, 3, 2, 2, 1],
    [2, 2, 3, 2, 1, 1],
    [2, 2, 1, 1, 3, 2],
    [2, 2, 1, 2, 3, 1],
    [2, 1, 3, 2, 1, 2],
    [2, 2, 3, 1, 1, 2],
    [3, 1, 2, 1, 3, 1],
    [3, 1, 1, 2, 2, 2],
    [3, 2, 1, 1, 2, 2],
    [3, 2, 1, 2, 2, 1],
    [3, 1, 2, 2, 1, 2],
    [3, 2, 2, 1, 1, 2],
    [3, 2, 2, 2, 1, 1],
    [2, 1, 2, 1, 2, 3],
    [2, 1, 2, 3, 2, 1],
    [2, 3, 2, 1, 2, 1],
    [1, 1, 1, 3, 2, 3],
    [1, 3, 1, 1, 2, 3],
    [1, 3, 1, 3, 2, 1],
    [1, 1, 2, 3, 1, 3],
    [1, 3, 2, 1, 1, 3],
    [1, 3, 2, 3, 1, 1],
    [2, 1, 1, 3, 1, 3],
    [2, 3, 1, 1, 1, 3],
    [2, 3, 1, 3, 1, 1],
    [1, 1, 2, 1, 3, 3],
    [1, 1, 2, 3, 3, 1],
    [1, 3, 2, 1, 3, 1],
    [1, 1, 3, 1, 2, 3],
    [1, 1, 3, 3, 2, 1],
    [1, 3, 3, 1, 2, 1],
    [3, 1, 3, 1, 2, 1],
    [2, 1, 1, 3, 3, 1],
    [2, 3, 1, 1, 3, 1],
    [2, 1, 3, 1, 1, 3],
    [2, 1, 3, 3, 1, 1],
    [2, 1, 3, 1, 3, 1],
    [3, 1, 1, 1, 2, 3],
    [3, 1, 1, 3, 2, 1],
    [3, 3, 1, 1, 2, 1],
    [3, 1, 2, 1, 1, 3],
    [3, 1, 2, 3, 1, 1],
    [3, 3, 2, 1, 1, 1],
    [3, 1, 4, 1, 1, 1],
    [2, 2, 1, 4, 1, 1],
    [4, 3, 1, 1, 1, 1],
    [1, 1, 1, 2, 2, 4],
    [1, 1, 1, 4, 2, 2],
    [1, 2, 1, 1, 2, 4],
    [1, 2, 1, 4, 2, 1],
    [1, 4, 1, 1, 2, 2],
    [1, 4, 1, 2, 2, 1],
    [1, 1, 2, 2, 1, 4],
    [1, 1, 2, 4, 1, 2],
    [1, 2, 2, 1, 1, 4],
    [1, 2, 2, 4, 1, 1],
    [1, 4, 2, 1, 1, 2],
    [1, 4, 2, 2, 1, 1],
    [2, 4, 1, 2, 1, 1],
    [2, 2, 1, 1, 1, 4],
    [4, 1, 3, 1, 1, 1],
    [2, 4, 1, 1, 1, 2],
    [1, 3, 4, 1, 1, 1],
    [1, 1, 1, 2, 4, 2],
    [1, 2, 1, 1, 4, 2],
    [1, 2, 1, 2, 4, 1],
    [1, 1, 4, 2, 1, 2],
    [1, 2, 4, 1, 1, 2],
    [1, 2, 4, 2, 1, 1],
    [4, 1, 1, 2, 1, 2],
    [4, 2, 1, 1, 1, 2],
    [4, 2, 1, 2, 1, 1],
    [2, 1, 2, 1, 4, 1],
    [2, 1, 4, 1, 2, 1],
    [4, 1, 2, 1, 2, 1],
    [1, 1, 1, 1, 4, 3],
    [1, 1, 1, 3, 4, 1],
    [1, 3, 1, 1, 4, 1],
    [1, 1, 4, 1, 1, 3],
    [1, 1, 4, 3, 1, 1],
    [4, 1, 1, 1, 1, 3],
    [4, 1, 1, 3, 1, 1],
    [1, 1, 3, 1, 4, 1],
    [1, 1, 4, 1, 3, 1],
    [3, 1, 1, 1, 4, 1],
    [4, 1, 1, 1, 3, 1],
    [2, 1, 1, 4, 1, 2],
    [2, 1, 1, 2, 1, 4],
    [2, 1, 1, 2, 3, 2],
];
const CODE128_STOP: [u8; 7] = [2, 3, 3, 1, 1, 1, 2];
const START_B: u8 = 104;
const START_C: u8 = 105;
const SWITCH_TO_C: u8 = 99;
const SWITCH_TO_B: u8 = 100;

/// EAN-13 left-hand odd-parity (L) patterns, 7 modules, bit 6 first.
const EAN_L: [u8; 10] = [
    0b0001101, 0b0011001, 0b0010011, 0b0111101, 0b0100011, 0b0110001, 0b0101111, 0b0111011,
    0b0110111, 0b0001011,
];
/// Parity of digits 2..=7 by the first digit: bit set = even parity (G).
const EAN_PARITY: [u8; 10] = [
    0b000000, 0b001011, 0b001101, 0b001110, 0b010011, 0b011001, 0b011100, 0b010101, 0b010110,
    0b011010,
];

/// How the human-readable text sits under the bars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hrt {
    /// Centred under the symbol (Code 128).
    Centered(String),
    /// EAN-13: first digit left of the start guard, then six digits under
    /// each half.
    Ean13 { digits: [u8; 13] },
}

/// An encoded 1D symbol, before drawing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linear {
    pub symbology: &'static str,
    /// One entry per module, `true` = bar; quiet zones not included.
    pub modules: Vec<bool>,
    pub quiet_left: u32,
    pub quiet_right: u32,
    /// Module ranges (start, end) of guard bars that reach into the text
    /// area (EAN-13).
    pub guards: Vec<(u32, u32)>,
    pub hrt: Hrt,
}

impl Linear {
    fn width_modules(&self) -> u32 {
        self.quiet_left + self.modules.len() as u32 + self.quiet_right
    }
}

/// Encodes `payload` in the requested symbology.
pub fn encode(kind: BarcodeType, payload: &str) -> Result<Linear, RenderError> {
    match kind {
        BarcodeType::Code128 => code128(payload),
        BarcodeType::Ean13 => ean13(payload),
    }
}

fn invalid(symbology: &'static str, reason: String) -> RenderError {
    RenderError::InvalidBarcode { symbology, reason }
}

/// Code 128 symbol values (start, data with code set switches, checksum,
/// without stop) of the shortest encoding using code sets B and C.
pub fn code128_values(payload: &str) -> Result<Vec<u8>, RenderError> {
    let s = payload.as_bytes();
    if let Some(c) = payload.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(invalid(
            "Code 128",
            format!(
                "U+{:04X} is not printable ASCII (code set B covers space to `~`)",
                u32::from(c)
            ),
        ));
    }
    let n = s.len();
    let pair = |i: usize| i + 1 < n && s[i].is_ascii_digit() && s[i + 1].is_ascii_digit();
    // cost[i][set]: symbols needed for s[i..] when the current set is
    // B (0) or C (1). Switching B->C only pays where a digit pair starts;
    // staying in C is never worse while a pair is available, so these two
    // restrictions keep the recurrence acyclic without losing optimality.
    let mut cost = vec![[0usize; 2]; n + 1];
    for i in (0..n).rev() {
        let stay_b = 1 + cost[i + 1][0];
        let (b, c);
        if pair(i) {
            c = 1 + cost[i + 2][1];
            b = stay_b.min(1 + c);
        } else {
            b = stay_b;
            c = 1 + b;
        }
        cost[i] = [b, c];
    }
    let mut set = if pair(0) && cost[0][1] < cost[0][0] {
        1
    } else {
        0
    };
    let mut values = vec![if set == 1 { START_C } else { START_B }];
    let mut i = 0;
    while i < n {
        if set == 0 {
            if pair(i) && 1 + cost[i][1] < 1 + cost[i + 1][0] {
                values.push(SWITCH_TO_C);
                set = 1;
                continue;
            }
            values.push(s[i] - b' ');
            i += 1;
        } else if pair(i) {
            values.push((s[i] - b'0') * 10 + (s[i + 1] - b'0'));
            i += 2;
        } else {
            values.push(SWITCH_TO_B);
            set = 0;
        }
    }
    let check = values
        .iter()
        .enumerate()
        .map(|(pos, &v)| pos.max(1) * usize::from(v))
        .sum::<usize>()
        % 103;
    values.push(check as u8);
    Ok(values)
}

fn code128(payload: &str) -> Result<Linear, RenderError> {
    let values = code128_values(payload)?;
    let mut modules = Vec::with_capacity(values.len() * 11 + 13);
    let mut push = |widths: &[u8]| {
        for (k, &w) in widths.iter().enumerate() {
            modules.extend(std::iter::repeat_n(k % 2 == 0, usize::from(w)));
        }
    };
    for &v in &values {
        push(&CODE128[usize::from(v)]);
    }
    push(&CODE128_STOP);
    Ok(Linear {
        symbology: "Code 128",
        modules,
        quiet_left: 10,
        quiet_right: 10,
        guards: Vec::new(),
        hrt: Hrt::Centered(payload.to_string()),
    })
}

/// The EAN-13 check digit of 12 digits.
pub fn ean13_check(digits: &[u8; 12]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn ean13(payload: &str) -> Result<Linear, RenderError> {
    let sym = "EAN-13";
    if !payload.bytes().all(|b| b.is_ascii_digit()) || !(12..=13).contains(&payload.len()) {
        return Err(invalid(
            sym,
            "needs 12 digits (the check digit is added) or 13 digits".into(),
        ));
    }
    let mut digits = [0u8; 13];
    for (d, b) in digits.iter_mut().zip(payload.bytes()) {
        *d = b - b'0';
    }
    let mut first12 = [0u8; 12];
    first12.copy_from_slice(&digits[..12]);
    let check = ean13_check(&first12);
    if payload.len() == 13 && digits[12] != check {
        return Err(invalid(
            sym,
            format!("check digit is {}, expected {check}", digits[12]),
        ));
    }
    digits[12] = check;

    let mut modules = Vec::with_capacity(95);
    let mut push_bits = |bits: u8, n: u32| {
        for k in (0..n).rev() {
            modules.push(bits >> k & 1 == 1);
        }
    };
    push_bits(0b101, 3);
    let parity = EAN_PARITY[usize::from(digits[0])];
    for (k, &d) in digits[1..7].iter().enumerate() {
        let l = EAN_L[usize::from(d)];
        let even = parity >> (5 - k) & 1 == 1;
        // G = R reversed, R = L inverted.
        let pattern = if even { reverse7(!l & 0x7F) } else { l };
        push_bits(pattern, 7);
    }
    push_bits(0b01010, 5);
    for &d in &digits[7..13] {
        push_bits(!EAN_L[usize::from(d)] & 0x7F, 7);
    }
    push_bits(0b101, 3);
    Ok(Linear {
        symbology: sym,
        modules,
        quiet_left: 11,
        quiet_right: 7,
        guards: vec![(0, 3), (45, 50), (92, 95)],
        hrt: Hrt::Ean13 { digits },
    })
}

fn reverse7(bits: u8) -> u8 {
    (0..7).fold(0, |acc, k| acc | ((bits >> k) & 1) << (6 - k))
}

/// Shapes `text` at the largest scale from `scale` down to the minimum that
/// keeps it within `max_w` dots; `None` when even the minimum is too wide.
fn fit_text(text: &str, scale: f32, max_w: u32, dims: &Dims) -> Result<Option<Text>, RenderError> {
    let min = dims.min_text_scale();
    let mut t = Text::new(
        Shaped::new(text, Weight::Regular)?,
        scale.max(min),
        dims.x_ratio(),
    );
    if t.width() <= max_w {
        return Ok(Some(t));
    }
    let (mut lo, mut hi) = (min as u32, t.scale as u32);
    t = t.at(min);
    if t.width() > max_w {
        return Ok(None);
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        t = t.at(mid as f32);
        if t.width() <= max_w {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some(t.at(lo as f32)))
}

/// Draws `sym` with its text into a cell `height` dots tall and at most
/// `max_width` dots long. Picks the widest module (up to 0.33 mm, at least
/// `Dims::min_module_along`) that fits.
pub fn draw(sym: &Linear, height: u32, max_width: u32, dims: &Dims) -> Result<Bitmap, RenderError> {
    let min = dims.min_module_along();
    let target = dims.along(MODULE_MM).max(min);
    let Some(module) = (min..=target)
        .rev()
        .find(|m| sym.width_modules() * m <= max_width)
    else {
        return Err(RenderError::CodeDoesNotFit {
            field: "barcode",
            symbology: sym.symbology,
        });
    };
    let too_small = || RenderError::TextDoesNotFit {
        field: "barcode".into(),
        min_px: dims.min_text_scale() as u32,
    };
    let hrt_scale = (height as f32 * 0.2)
        .round()
        .min(dims.across(MAX_HRT_MM) as f32);
    let sym_w = sym.width_modules() * module;
    let gap = (height / 40).max(1);
    // Text pieces with their left x.
    let mut pieces: Vec<(Text, u32)> = Vec::new();
    let width;
    match &sym.hrt {
        Hrt::Centered(text) => {
            // As wide as the symbol if a legible size allows, else wider.
            let t = match fit_text(text, hrt_scale, sym_w, dims)? {
                Some(t) => t,
                None => fit_text(text, hrt_scale, max_width, dims)?.ok_or_else(too_small)?,
            };
            width = sym_w.max(t.width());
            let x = (width - t.width()) / 2;
            pieces.push((t, x));
        }
        Hrt::Ean13 { digits } => {
            width = sym_w;
            let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let x0 = sym.quiet_left * module;
            // Free spans between guards, in dots: left half 3..45, right
            // half 50..92; the first digit goes in the left quiet zone.
            let spans = [
                (&s[0..1], 0, x0.saturating_sub(gap)),
                (&s[1..7], x0 + 3 * module + gap, x0 + 45 * module - gap),
                (&s[7..13], x0 + 50 * module + gap, x0 + 92 * module - gap),
            ];
            let mut scale = hrt_scale;
            for (text, a, b) in spans {
                let t = fit_text(text, scale, b.saturating_sub(a), dims)?.ok_or_else(too_small)?;
                scale = scale.min(t.scale);
            }
            for (text, a, b) in spans {
                let t = font::shape(text, Weight::Regular, scale, dims.x_ratio())?;
                let x = if a == 0 {
                    b.saturating_sub(t.width())
                } else {
                    a + b.saturating_sub(a).saturating_sub(t.width()) / 2
                };
                pieces.push((t, x));
            }
        }
    }
    let text_h = pieces
        .iter()
        .map(|(t, _)| t.box_height())
        .max()
        .unwrap_or(0);
    if text_h + gap >= height / 2 {
        return Err(too_small());
    }
    let bar_h = height - text_h - gap;
    let mut canvas = Bitmap::new(width, height);
    let x_sym = (width - sym_w) / 2 + sym.quiet_left * module;
    for (k, &bar) in sym.modules.iter().enumerate() {
        if bar {
            let k = k as u32;
            let guard = sym.guards.iter().any(|&(a, b)| (a..b).contains(&k));
            let h = if guard {
                bar_h + gap + text_h / 2
            } else {
                bar_h
            };
            canvas.fill_rect(x_sym + k * module, 0, module, h, true);
        }
    }
    let text_y = height - text_h;
    for (t, x) in &pieces {
        // Align baselines: all pieces share the tallest box's top.
        let y = text_y + (t.box_top() - pieces_top(&pieces)) as u32;
        t.draw(&mut canvas, *x, y);
    }
    Ok(canvas)
}

fn pieces_top(pieces: &[(Text, u32)]) -> i32 {
    pieces.iter().map(|(t, _)| t.box_top()).min().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for w in CODE128 {
            assert_eq!(w.iter().map(|&x| u32::from(x)).sum::<u32>(), 11);
            assert!(seen.insert(w));
        }
        assert_eq!(CODE128_STOP.iter().map(|&x| u32::from(x)).sum::<u32>(), 13);
        assert_eq!(
            EAN_L.iter().collect::<std::collections::HashSet<_>>().len(),
            10
        );
    }

    #[test]
    fn code128_picks_the_shortest_code_sets() {
        // All digits, even: start C, 3 pairs, check.
        assert_eq!(code128_values("123456").unwrap().len(), 1 + 3 + 1);
        // Checksum of "PJJ123C" in set B: (104 + 48·1 + 42·2 + 42·3 + 17·4 + 18·5 + 19·6 + 35·7) mod 103 = 55.
        let v = code128_values("PJJ123C").unwrap();
        assert_eq!(v[0], START_B);
        assert_eq!(*v.last().unwrap(), 55);
        // Odd digit run: a leading digit in B, then C.
        let v = code128_values("X12345678").unwrap();
        assert!(v.contains(&SWITCH_TO_C));
        // Short digit runs stay in B.
        assert!(!code128_values("A12B").unwrap().contains(&SWITCH_TO_C));
        assert_eq!(code128_values("é").unwrap_err().code(), "invalid_barcode");
    }

    #[test]
    fn ean13_check_digit_and_modules() {
        // 4006381333931 is a valid EAN-13.
        assert_eq!(ean13_check(&[4, 0, 0, 6, 3, 8, 1, 3, 3, 3, 9, 3]), 1);
        let sym = ean13("400638133393").unwrap();
        assert_eq!(sym.modules.len(), 95);
        assert_eq!(
            ean13("4006381333932").unwrap_err().code(),
            "invalid_barcode"
        );
        assert!(ean13("40063813339").is_err());
        assert!(ean13("40063813339a").is_err());
        assert_eq!(reverse7(0b0001101), 0b1011000);
    }
}
