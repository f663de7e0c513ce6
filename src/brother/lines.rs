//! Bit plumbing shared by the encoder and the decoder: a fast bitmap
//! transpose (label columns <-> raster lines).
//!
//! Bit order everywhere is the wire's: bit index `b` is byte `b / 8`, mask
//! `0x80 >> (b % 8)` (MSB first), which is also `Bitmap`'s row packing, so a
//! transposed label bitmap on a head-high canvas has the raster lines as rows.

use crate::bitmap::Bitmap;

/// Transposes an 8x8 bit block held big-endian in a `u64` (byte 0 = row 0,
/// MSB = column 0). Hacker's Delight, "transpose8".
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^= t ^ (t << 28);
    x
}

/// Swaps the axes of a bitmap (pixel `(x, y)` moves to `(y, x)`), eight by
/// eight pixels at a time. Same result as `Bitmap::transpose`, much faster.
pub fn transpose(src: &Bitmap) -> Bitmap {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let src_stride = src.stride();
    let dst_stride = h.div_ceil(8);
    let mut out = vec![0u8; dst_stride * w];
    let data = src.as_bytes();
    let zero_row = vec![0u8; src_stride];
    for by in 0..dst_stride {
        // The eight source rows of this block row (missing rows read as 0).
        let rows: [&[u8]; 8] = std::array::from_fn(|r| {
            let y = by * 8 + r;
            if y < h {
                &data[y * src_stride..(y + 1) * src_stride]
            } else {
                &zero_row[..]
            }
        });
        for (bx, &first) in rows[0].iter().enumerate() {
            let block = u64::from_be_bytes([
                first,
                rows[1][bx],
                rows[2][bx],
                rows[3][bx],
                rows[4][bx],
                rows[5][bx],
                rows[6][bx],
                rows[7][bx],
            ]);
            if block == 0 {
                continue;
            }
            let t = transpose8(block).to_be_bytes();
            let x0 = bx * 8;
            for (c, &byte) in t.iter().enumerate().take(w - x0) {
                out[(x0 + c) * dst_stride + by] = byte;
            }
        }
    }
    // Sizes match by construction; padding bits are zero because the source
    // padding (columns >= w) and missing rows (>= h) were read as zero.
    Bitmap::from_packed(src.height(), src.width(), out).unwrap_or_else(|| src.transpose())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(w: u32, h: u32, mut seed: u64) -> Bitmap {
        let mut bmp = Bitmap::new(w, h);
        for y in 0..h {
            for x in 0..w {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                bmp.set(x, y, seed >> 63 == 1);
            }
        }
        bmp
    }

    #[test]
    fn transpose_matches_the_slow_one() {
        for (w, h) in [
            (1, 1),
            (8, 8),
            (13, 70),
            (70, 13),
            (380, 70),
            (9, 17),
            (0, 5),
        ] {
            let bmp = pseudo_random(w, h, u64::from(w * 31 + h));
            assert_eq!(transpose(&bmp), bmp.transpose(), "{w}x{h}");
        }
    }
}
