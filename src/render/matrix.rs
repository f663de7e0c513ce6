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
use qrcode::types::QrError;
use qrcode::{EcLevel, QrCode, Version};

use super::canvas::Canvas;
use super::error::RenderError;

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
        canvas: &mut Canvas,
        cell: (u32, u32, u32, u32),
        module: u32,
        module_x: u32,
    ) {
        let (x, y, w, h) = cell;
        let x0 = x + w.saturating_sub(self.side * module_x) / 2;
        let y0 = y + h.saturating_sub(self.side * module) / 2;
        for my in 0..self.side {
            for mx in 0..self.side {
                if self.get(mx, my) {
                    canvas.fill_rect(x0 + mx * module_x, y0 + my * module, module_x, module);
                }
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
/// `cell` dots.
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
    let code = match QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M) {
        Ok(code) => code,
        Err(QrError::DataTooLong) => return Err(too_large()),
        Err(_) => {
            return Err(RenderError::Internal {
                reason: "QR encoder rejected its input",
            })
        }
    };
    let side = code.width() as u32;
    if side > max_side(cell) {
        return Err(too_large());
    }
    Ok(Matrix {
        side,
        modules: code
            .to_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect(),
    })
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

/// Encodes a square Data Matrix (smallest size) that fits `cell` dots.
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
        let mut bmp = Canvas::new(40, 40);
        m.draw(&mut bmp, (0, 0, 40, 40), module, module);
        // Finder pattern corner: top-left module of the symbol is dark.
        let off = (40 - m.side) / 2;
        assert!(bmp.get(off, off));
        assert!(!bmp.get(off - 1, off));
    }
}
