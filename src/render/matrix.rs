//! Square 2D symbols: QR (via `qrcode`, error correction M as upstream) and
//! Data Matrix ECC 200 (via `datamatrix`, square sizes only).
//!
//! **Invariants.** A symbol is drawn with whole-dot modules (the same number
//! of dots for every module) and a quiet zone of at least `QUIET_MODULES`
//! light modules on every side inside its cell; the symbol's version/size is
//! the smallest that holds the payload, and the largest allowed is the
//! largest whose modules are still at least one dot. Anything bigger is a
//! `payload_too_large` error that says what the medium holds.

use datamatrix::{SymbolList, SymbolSize};
use qrcode::bits::Bits;
use qrcode::canvas::{Canvas as QrCanvas, MaskPattern, Module};
use qrcode::types::QrError;
use qrcode::{Color, EcLevel, Version};

use super::error::RenderError;
use crate::bitmap::Bitmap;

/// Light modules kept around a symbol on each side. QR's spec asks for 4,
/// Data Matrix's for 1; 2 is what phone and handheld decoders (and
/// rqrr/ZXing in our tests) need, and on narrow tape every module counts.
/// The blank tape outside the printable area adds to it in practice.
pub const QUIET_MODULES: u32 = 2;

/// A square matrix of modules, row-major, `true` = dark.
#[derive(Clone, PartialEq, Eq)]
pub struct Matrix {
    pub side: u32,
    modules: Vec<bool>,
}

impl Matrix {
    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.side && y < self.side && self.modules[(y * self.side + x) as usize]
    }

    /// Dots per module when the symbol plus quiet zone must fit `cell` dots
    /// (0 when it does not fit at all).
    pub fn module_dots(&self, cell: u32) -> u32 {
        cell / (self.side + 2 * QUIET_MODULES)
    }

    /// Draws the symbol centred in the cell `(x, y, w, h)` with `module`
    /// dots across and `module_x` dots along the feed per module.
    pub fn draw(
        &self,
        canvas: &mut Bitmap,
        cell: (u32, u32, u32, u32),
        module: u32,
        module_x: u32,
    ) {
        let (x, y, w, h) = cell;
        let x0 = x + w.saturating_sub(self.side * module_x) / 2;
        let y0 = y + h.saturating_sub(self.side * module) / 2;
        // One rectangle per horizontal run of dark modules.
        for my in 0..self.side {
            let mut mx = 0;
            while mx < self.side {
                if !self.get(mx, my) {
                    mx += 1;
                    continue;
                }
                let start = mx;
                while mx < self.side && self.get(mx, my) {
                    mx += 1;
                }
                canvas.fill_rect(
                    x0 + start * module_x,
                    y0 + my * module,
                    (mx - start) * module_x,
                    module,
                    true,
                );
            }
        }
    }
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Matrix({0}x{0})", self.side)
    }
}

/// Largest symbol side (modules) whose modules are one dot in `cell` dots.
fn max_side(cell: u32) -> u32 {
    cell.saturating_sub(2 * QUIET_MODULES)
}

/// Byte-mode capacity of a QR version at level M.
fn qr_byte_capacity(version: i16) -> usize {
    let bits = Bits::new(Version::Normal(version))
        .max_len(EcLevel::M)
        .unwrap_or(0);
    let count_bits = if version <= 9 { 8 } else { 16 };
    bits.saturating_sub(4 + count_bits) / 8
}

/// Encodes a QR code (level M, smallest version) that fits a square cell of
/// `cell` minimum-size modules (the caller divides its dots by the smallest
/// module it allows).
pub fn qr(payload: &str, cell: u32) -> Result<Matrix, RenderError> {
    let max_version = (i64::from(max_side(cell)) - 17) / 4;
    if max_version < 1 {
        return Err(RenderError::CodeDoesNotFit {
            field: "qr_payload",
            symbology: "QR",
        });
    }
    let max_version = max_version.min(40) as i16;
    let too_large = || RenderError::PayloadTooLarge {
        field: "qr_payload",
        bytes: payload.len(),
        max_bytes: qr_byte_capacity(max_version),
    };
    let (side, modules) = match qr_modules(payload.as_bytes()) {
        Ok(res) => res,
        Err(QrError::DataTooLong) => return Err(too_large()),
        Err(_) => {
            return Err(RenderError::Internal {
                reason: "QR encoder rejected its input",
            })
        }
    };
    if side > max_side(cell) {
        return Err(too_large());
    }
    Ok(Matrix { side, modules })
}

const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// The `qrcode` crate's segment optimiser, Reed-Solomon and placement, with
/// our own mask choice: its mask scoring dominated the render time (about
/// half a millisecond for a version 3 code). Candidates are scored on the
/// data and function patterns before format information is drawn (those 30
/// modules are the same kind of pattern for every mask); the chosen mask is
/// then applied by `qrcode` itself, which also writes the format bits.
fn qr_modules(payload: &[u8]) -> Result<(u32, Vec<bool>), QrError> {
    let (mut canvas, n) = unmasked_canvas(payload)?;
    let (base, is_data) = unmasked_modules(&canvas, n);
    let best = if n + 8 <= 64 {
        best_mask_u64(&base, &is_data, n)
    } else if n + 8 <= 128 {
        best_mask_u128(&base, &is_data, n)
    } else {
        best_mask_slow(&base, &is_data, n)
    };
    canvas.apply_mask(best);
    let modules = canvas
        .into_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok((n as u32, modules))
}

/// The level-M symbol for `payload` with function patterns and data drawn,
/// before any mask, and its side in modules.
fn unmasked_canvas(payload: &[u8]) -> Result<(QrCanvas, usize), QrError> {
    let bits = qrcode::bits::encode_auto(payload, EcLevel::M)?;
    let version = bits.version();
    let (data, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M)?;
    let mut canvas = QrCanvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    Ok((canvas, version.width() as usize))
}

/// Row-major, for each module of an unmasked `n`×`n` canvas: whether it is
/// dark, and whether it is a data module (one a mask applies to).
fn unmasked_modules(canvas: &QrCanvas, n: usize) -> (Vec<bool>, Vec<bool>) {
    let (mut base, mut is_data) = (vec![false; n * n], vec![false; n * n]);
    for y in 0..n {
        for x in 0..n {
            let i = y * n + x;
            match canvas.get(x as i16, y as i16) {
                Module::Unmasked(c) => {
                    is_data[i] = true;
                    base[i] = c == Color::Dark;
                }
                Module::Masked(c) => base[i] = c == Color::Dark,
                Module::Empty => {}
            }
        }
    }
    (base, is_data)
}

/// The mask with the lowest penalty, scoring module by module (any size).
fn best_mask_slow(base: &[bool], is_data: &[bool], n: usize) -> MaskPattern {
    let mut best = (u32::MAX, MaskPattern::Checkerboard);
    let mut masked = vec![false; n * n];
    for mask in MASKS {
        for y in 0..n {
            for x in 0..n {
                let i = y * n + x;
                masked[i] = base[i] ^ (is_data[i] && mask_bit(mask, x, y));
            }
        }
        let score = mask_penalty_slow(&masked, n);
        if score < best.0 {
            best = (score, mask);
        }
    }
    best.1
}

/// ISO/IEC 18004 mask conditions (`x` = column, `y` = row), written as the
/// standard writes them.
#[allow(clippy::manual_is_multiple_of)]
fn mask_bit(mask: MaskPattern, x: usize, y: usize) -> bool {
    match mask {
        MaskPattern::Checkerboard => (x + y) % 2 == 0,
        MaskPattern::HorizontalLines => y % 2 == 0,
        MaskPattern::VerticalLines => x % 3 == 0,
        MaskPattern::DiagonalLines => (x + y) % 3 == 0,
        MaskPattern::LargeCheckerboard => (y / 2 + x / 3) % 2 == 0,
        MaskPattern::Fields => (x * y) % 2 + (x * y) % 3 == 0,
        MaskPattern::Diamonds => ((x * y) % 2 + (x * y) % 3) % 2 == 0,
        MaskPattern::Meadow => ((x + y) % 2 + (x * y) % 3) % 2 == 0,
    }
}

/// Bit-parallel mask choice and ISO/IEC 18004 penalty (N1 runs of five or
/// more, N2 2x2 blocks, N3 finder-like 1:1:3:1:1 patterns next to four light
/// modules with the quiet zone counting as light, N4 dark balance). Each row
/// and column is one integer with module `j` at bit `j + 4` (four light
/// modules of quiet zone on each side): `u64` up to 56 modules (version 9),
/// `u128` up to 120 (version 25); larger symbols use the plain scorer, and
/// the tests check they all agree.
macro_rules! bit_mask_choice {
    ($best:ident, $penalty:ident, $lines:ident, $t:ty) => {
        /// Rows and columns of a module matrix as bit lines.
        fn $lines(m: &[bool], n: usize) -> (Vec<$t>, Vec<$t>) {
            let one: $t = 1;
            let (mut rows, mut cols): (Vec<$t>, Vec<$t>) = (vec![0; n], vec![0; n]);
            for y in 0..n {
                for x in 0..n {
                    if m[y * n + x] {
                        rows[y] |= one << (x + 4);
                        cols[x] |= one << (y + 4);
                    }
                }
            }
            (rows, cols)
        }

        fn $best(base: &[bool], is_data: &[bool], n: usize) -> MaskPattern {
            let one: $t = 1;
            let (base_rows, base_cols) = $lines(base, n);
            let (data_rows, data_cols) = $lines(is_data, n);
            let (mut rows, mut cols): (Vec<$t>, Vec<$t>) = (vec![0; n], vec![0; n]);
            let mut best = (u32::MAX, MaskPattern::Checkerboard);
            for mask in MASKS {
                // Every mask condition repeats every 12 rows and columns.
                let mut row_pat: [$t; 12] = [0; 12];
                let mut col_pat: [$t; 12] = [0; 12];
                for k in 0..12 {
                    for j in 0..n {
                        if mask_bit(mask, j, k) {
                            row_pat[k] |= one << (j + 4);
                        }
                        if mask_bit(mask, k, j) {
                            col_pat[k] |= one << (j + 4);
                        }
                    }
                }
                for i in 0..n {
                    rows[i] = base_rows[i] ^ (data_rows[i] & row_pat[i % 12]);
                    cols[i] = base_cols[i] ^ (data_cols[i] & col_pat[i % 12]);
                }
                let score = $penalty(&rows, &cols, n);
                if score < best.0 {
                    best = (score, mask);
                }
            }
            best.1
        }

        fn $penalty(rows: &[$t], cols: &[$t], n: usize) -> u32 {
            const FINDER: [bool; 11] = [
                true, false, true, true, true, false, true, false, false, false, false,
            ];
            let one: $t = 1;
            // Bit j: modules j and j+1 are both inside the symbol.
            let pairs: $t = ((one << (n - 1)) - 1) << 4;
            let starts: $t = (one << (n - 2)) - 1;
            let mut score = 0u32;
            for &line in rows.iter().chain(cols) {
                // N1 = sum over runs of length L >= 5 of (L - 2)
                //    = 3 * (windows of 5 equal) - 2 * (windows of 6 equal).
                let eq = !(line ^ (line >> 1)) & pairs;
                let w5 = eq & (eq >> 1) & (eq >> 2) & (eq >> 3);
                let w6 = w5 & (eq >> 4);
                score += 3 * w5.count_ones() - 2 * w6.count_ones();
                // N3: the 11-module window starting at each position.
                let (mut fwd, mut back) = (starts, starts);
                for i in 0..11 {
                    let (on, off) = (line >> i, !line >> i);
                    fwd &= if FINDER[i] { on } else { off };
                    back &= if FINDER[10 - i] { on } else { off };
                }
                score += 40 * (fwd.count_ones() + back.count_ones());
            }
            // N2: bit j of `same` = the block (j, j+1) x (y, y+1) is one colour.
            for y in 0..n - 1 {
                let (a, b) = (rows[y], rows[y + 1]);
                let vert = !(a ^ b);
                let same = !(a ^ (a >> 1)) & !(b ^ (b >> 1)) & vert & (vert >> 1) & pairs;
                score += 3 * same.count_ones();
            }
            let dark: usize = rows.iter().map(|r| r.count_ones() as usize).sum();
            let percent = dark * 100 / (n * n);
            score + 10 * (percent.abs_diff(50) / 5) as u32
        }
    };
}

bit_mask_choice!(best_mask_u64, penalty_u64, lines_u64, u64);
bit_mask_choice!(best_mask_u128, penalty_u128, lines_u128, u128);

/// Module-by-module scoring (any size).
fn mask_penalty_slow(m: &[bool], n: usize) -> u32 {
    let mut score = 0u32;
    // Each row, then each column, copied into a line with four light
    // modules of quiet zone on both ends.
    let mut line = vec![0u8; n + 8];
    for horizontal in [true, false] {
        for i in 0..n {
            for (j, cell) in line[4..n + 4].iter_mut().enumerate() {
                *cell = u8::from(if horizontal {
                    m[i * n + j]
                } else {
                    m[j * n + i]
                });
            }
            score += line_penalty(&line);
        }
    }
    for y in 0..n - 1 {
        let (row, below) = (&m[y * n..(y + 1) * n], &m[(y + 1) * n..(y + 2) * n]);
        for x in 0..n - 1 {
            let c = row[x];
            if c == row[x + 1] && c == below[x] && c == below[x + 1] {
                score += 3;
            }
        }
    }
    let dark = m.iter().filter(|&&d| d).count();
    let percent = dark * 100 / (n * n);
    score + 10 * (percent.abs_diff(50) / 5) as u32
}

/// N1 and N3 of one padded line (four light modules at each end).
fn line_penalty(line: &[u8]) -> u32 {
    const FINDER_THEN_LIGHT: u32 = 0b101_1101_0000;
    const LIGHT_THEN_FINDER: u32 = 0b000_0101_1101;
    let mut score = 0;
    let mut window = 0u32;
    for (k, &dark) in line.iter().enumerate() {
        window = (window << 1 | u32::from(dark)) & 0x7FF;
        if k >= 10 && (window == FINDER_THEN_LIGHT || window == LIGHT_THEN_FINDER) {
            score += 40;
        }
    }
    let inner = &line[4..line.len() - 4];
    let mut run = 1u32;
    for k in 1..inner.len() {
        if inner[k] == inner[k - 1] {
            run += 1;
        } else {
            if run >= 5 {
                score += run - 2;
            }
            run = 1;
        }
    }
    if run >= 5 {
        score += run - 2;
    }
    score
}

/// Square ECC 200 sizes: symbol side in modules and data codewords.
const DM_SQUARES: [(SymbolSize, u32, usize); 24] = [
    (SymbolSize::Square10, 10, 3),
    (SymbolSize::Square12, 12, 5),
    (SymbolSize::Square14, 14, 8),
    (SymbolSize::Square16, 16, 12),
    (SymbolSize::Square18, 18, 18),
    (SymbolSize::Square20, 20, 22),
    (SymbolSize::Square22, 22, 30),
    (SymbolSize::Square24, 24, 36),
    (SymbolSize::Square26, 26, 44),
    (SymbolSize::Square32, 32, 62),
    (SymbolSize::Square36, 36, 86),
    (SymbolSize::Square40, 40, 114),
    (SymbolSize::Square44, 44, 144),
    (SymbolSize::Square48, 48, 174),
    (SymbolSize::Square52, 52, 204),
    (SymbolSize::Square64, 64, 280),
    (SymbolSize::Square72, 72, 368),
    (SymbolSize::Square80, 80, 456),
    (SymbolSize::Square88, 88, 576),
    (SymbolSize::Square96, 96, 696),
    (SymbolSize::Square104, 104, 816),
    (SymbolSize::Square120, 120, 1050),
    (SymbolSize::Square132, 132, 1304),
    (SymbolSize::Square144, 144, 1558),
];

/// Encodes a square Data Matrix (smallest size) that fits `cell`
/// minimum-size modules.
/// Latin-1 text is encoded as is; other text gets a UTF-8 ECI.
pub fn datamatrix(payload: &str, cell: u32) -> Result<Matrix, RenderError> {
    let allowed: Vec<_> = DM_SQUARES
        .iter()
        .filter(|(_, side, _)| *side <= max_side(cell))
        .collect();
    let Some(&&(_, _, largest_cw)) = allowed.last() else {
        return Err(RenderError::CodeDoesNotFit {
            field: "barcode",
            symbology: "Data Matrix",
        });
    };
    let list = SymbolList::with_whitelist(allowed.iter().map(|(size, _, _)| *size));
    let code = datamatrix::DataMatrixBuilder::new()
        .with_symbol_list(list)
        .encode_str(payload)
        .map_err(|_| RenderError::PayloadTooLarge {
            field: "barcode",
            bytes: payload.len(),
            // Base256 needs one or two length codewords.
            max_bytes: largest_cw.saturating_sub(2),
        })?;
    let bitmap = code.bitmap();
    let side = bitmap.width() as u32;
    if bitmap.height() as u32 != side {
        return Err(RenderError::Internal {
            reason: "Data Matrix encoder returned a rectangle",
        });
    }
    Ok(Matrix {
        side,
        modules: bitmap.bits().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datamatrix::DataMatrix;

    #[test]
    fn qr_fits_and_reports_capacity() {
        let m = qr("https://example.org/item/42", 70).unwrap();
        assert!(m.side + 2 * QUIET_MODULES <= 70);
        assert_eq!(m.module_dots(70), 70 / (m.side + 4));
        // 24 dots: version 1 (21) + 4 quiet modules does not fit.
        let err = qr("x", 24).unwrap_err();
        assert_eq!(err.code(), "code_does_not_fit");
        let err = qr(&"x".repeat(300), 70).unwrap_err();
        assert_eq!(err.code(), "payload_too_large");
        // 70 dots: at most version 12 (65 modules).
        assert!(err.to_string().contains(&qr_byte_capacity(12).to_string()));
        assert_eq!(qr_byte_capacity(1), 14);
        assert_eq!(qr_byte_capacity(40), 2331);
    }

    #[test]
    fn mask_penalty_rules() {
        // A 5x5 all-light symbol: 10 runs of 5 (3 each), 16 2x2 blocks (3
        // each), 0% dark (N4 = 10 * 10).
        assert_eq!(mask_penalty_slow(&[false; 25], 5), 10 * 3 + 16 * 3 + 100);
        // A finder-like row next to the quiet zone scores 40 per side.
        let mut line = vec![0u8; 4];
        line.extend([1, 0, 1, 1, 1, 0, 1]);
        line.extend([0u8; 4]);
        assert_eq!(line_penalty(&line), 80);
    }

    #[test]
    fn bit_parallel_penalty_matches_the_plain_one() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for n in [5, 21, 25, 29, 53, 56, 57, 101, 117, 120] {
            for density in [2, 3, 7] {
                let m: Vec<bool> = (0..n * n)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed.is_multiple_of(density)
                    })
                    .collect();
                let slow = mask_penalty_slow(&m, n);
                let (rows, cols) = lines_u128(&m, n);
                assert_eq!(penalty_u128(&rows, &cols, n), slow, "u128 n={n}");
                if n + 8 <= 64 {
                    let (rows, cols) = lines_u64(&m, n);
                    assert_eq!(penalty_u64(&rows, &cols, n), slow, "u64 n={n}");
                }
            }
        }
    }

    #[test]
    fn bit_parallel_mask_choice_matches_the_plain_one() {
        for payload in [
            "A",
            "https://inventory.example.org/item/A-1042",
            &"7".repeat(300),
        ] {
            let (canvas, n) = unmasked_canvas(payload.as_bytes()).unwrap();
            let (base, is_data) = unmasked_modules(&canvas, n);
            let slow = best_mask_slow(&base, &is_data, n) as u8;
            assert_eq!(best_mask_u128(&base, &is_data, n) as u8, slow, "{payload}");
            if n + 8 <= 64 {
                assert_eq!(best_mask_u64(&base, &is_data, n) as u8, slow, "{payload}");
            }
        }
    }

    #[test]
    fn our_mask_conditions_match_qrcode() {
        // Apply each mask with qrcode and with `mask_bit`: the data modules
        // must agree (format information differs by design).
        let (canvas, n) = unmasked_canvas(b"mask check").unwrap();
        for mask in MASKS {
            let mut theirs = canvas.clone();
            theirs.apply_mask(mask);
            for y in 0..n {
                for x in 0..n {
                    if let Module::Unmasked(c) = canvas.get(x as i16, y as i16) {
                        let ours = (c == Color::Dark) ^ mask_bit(mask, x, y);
                        let got = theirs.get(x as i16, y as i16).is_dark();
                        assert_eq!(ours, got, "{mask:?} at ({x},{y})");
                    }
                }
            }
        }
    }

    #[test]
    fn datamatrix_sizes_match_the_encoder() {
        for (size, side, _) in DM_SQUARES {
            let code = DataMatrix::encode(b"1", SymbolList::from(size)).unwrap();
            assert_eq!(code.bitmap().width() as u32, side);
        }
        let m = datamatrix("grcy:p:12:5f1a", 70).unwrap();
        assert!(m.side <= 66);
        assert_eq!(datamatrix("x", 13).unwrap_err().code(), "code_does_not_fit");
        assert_eq!(
            datamatrix(&"x".repeat(300), 40).unwrap_err().code(),
            "payload_too_large"
        );
    }

    #[test]
    fn draw_uses_whole_modules_centred() {
        let m = qr("A", 40).unwrap();
        let module = m.module_dots(40);
        assert_eq!(module, 1);
        let mut bmp = Bitmap::new(40, 40);
        m.draw(&mut bmp, (0, 0, 40, 40), module, module);
        // Finder pattern corner: top-left module of the symbol is dark.
        let off = (40 - m.side) / 2;
        assert!(bmp.get(off, off));
        assert!(!bmp.get(off - 1, off));
    }
}
