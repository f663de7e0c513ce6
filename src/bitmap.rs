//! `Bitmap`: the one-bit image that flows from the renderer through the
//! encoder to the printer and back out of the decoder and the emulator.
//!
//! **Orientation (project-wide convention).** A label bitmap is kept in
//! *label orientation*: `x` runs along the feed direction (column 0 is the
//! leading edge, i.e. the first raster line sent to the printer) and `y` runs
//! across the media (row 0 is the printable dot nearest the *first* margin on
//! the wire, so row `y` lands on head bit `first_margin + y`). The height is
//! therefore always the printable dots across the medium, the width is the
//! label length in raster lines. This is ptouch's landscape convention and a
//! rotation (not a mirror) of brother_ql's portrait convention, so text drawn
//! upright in a label bitmap prints readable on both families.
//!
//! Storage is row-major, one bit per pixel, most significant bit first,
//! `1` = ink. Padding bits at the end of each row are always zero, which is
//! what makes the derived `PartialEq` a pixel comparison.

use std::fmt;

/// A one-bit image: `1` is ink (black, or red on a red layer), `0` is paper.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bitmap {
    width: u32,
    height: u32,
    stride: usize,
    data: Vec<u8>,
}

impl Bitmap {
    /// An all-white bitmap.
    pub fn new(width: u32, height: u32) -> Bitmap {
        let stride = (width as usize).div_ceil(8);
        Bitmap {
            width,
            height,
            stride,
            data: vec![0; stride * height as usize],
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per packed row.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// `true` where there is ink. Out-of-range coordinates read as paper.
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let byte = self.data[y as usize * self.stride + (x as usize >> 3)];
        byte & (0x80 >> (x & 7)) != 0
    }

    /// Sets one pixel. Out-of-range coordinates are ignored, so drawing code
    /// may clip freely.
    pub fn set(&mut self, x: u32, y: u32, ink: bool) {
        if x >= self.width || y >= self.height {
            return;
        }
        let idx = y as usize * self.stride + (x as usize >> 3);
        let mask = 0x80 >> (x & 7);
        if ink {
            self.data[idx] |= mask;
        } else {
            self.data[idx] &= !mask;
        }
    }

    /// One packed row (MSB first, padding bits zero).
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.stride]
    }

    /// The packed pixel data, row after row.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Builds a bitmap from packed rows. Returns `None` when `data` has the
    /// wrong length. Padding bits are cleared.
    pub fn from_packed(width: u32, height: u32, data: Vec<u8>) -> Option<Bitmap> {
        let stride = (width as usize).div_ceil(8);
        if data.len() != stride * height as usize {
            return None;
        }
        let mut res = Bitmap {
            width,
            height,
            stride,
            data,
        };
        res.clear_padding();
        Some(res)
    }

    fn clear_padding(&mut self) {
        let tail = self.width % 8;
        if tail == 0 || self.stride == 0 {
            return;
        }
        let mask = 0xFFu8 << (8 - tail);
        for y in 0..self.height as usize {
            self.data[y * self.stride + self.stride - 1] &= mask;
        }
    }

    /// Fills a rectangle (clipped to the bitmap).
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, ink: bool) {
        let x_end = x.saturating_add(w).min(self.width);
        let y_end = y.saturating_add(h).min(self.height);
        for yy in y.min(self.height)..y_end {
            for xx in x.min(self.width)..x_end {
                self.set(xx, yy, ink);
            }
        }
    }

    /// Copies the ink of `src` onto `self` with its top-left corner at
    /// `(x, y)` (ink is OR-ed; clipped to `self`).
    pub fn draw(&mut self, src: &Bitmap, x: u32, y: u32) {
        for sy in 0..src.height {
            for sx in 0..src.width {
                if src.get(sx, sy) {
                    self.set(x + sx, y + sy, true);
                }
            }
        }
    }

    /// Number of ink pixels.
    pub fn count_ink(&self) -> u64 {
        self.data.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    /// `true` when no pixel is inked.
    pub fn is_blank(&self) -> bool {
        self.data.iter().all(|&b| b == 0)
    }

    /// Swaps the axes: pixel `(x, y)` moves to `(y, x)`.
    pub fn transpose(&self) -> Bitmap {
        let mut res = Bitmap::new(self.height, self.width);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    res.set(y, x, true);
                }
            }
        }
        res
    }

    /// Mirrors left-right.
    pub fn flip_horizontal(&self) -> Bitmap {
        let mut res = Bitmap::new(self.width, self.height);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    res.set(self.width - 1 - x, y, true);
                }
            }
        }
        res
    }

    /// Grey image with black ink on white paper (for PNG output).
    pub fn to_gray_image(&self) -> image::GrayImage {
        image::GrayImage::from_fn(self.width, self.height, |x, y| {
            image::Luma([if self.get(x, y) { 0 } else { 255 }])
        })
    }

    /// Thresholds a grey image: pixels darker than `threshold` become ink.
    pub fn from_gray_image(img: &image::GrayImage, threshold: u8) -> Bitmap {
        let mut res = Bitmap::new(img.width(), img.height());
        for (x, y, p) in img.enumerate_pixels() {
            if p.0[0] < threshold {
                res.set(x, y, true);
            }
        }
        res
    }

    /// A text dump, `#` for ink and `.` for paper, one line per row. Used by
    /// snapshot tests and debug output.
    pub fn to_ascii(&self) -> String {
        let mut res = String::with_capacity((self.width as usize + 1) * self.height as usize);
        for y in 0..self.height {
            for x in 0..self.width {
                res.push(if self.get(x, y) { '#' } else { '.' });
            }
            res.push('\n');
        }
        res
    }
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bitmap({}x{}, {} ink)",
            self.width,
            self.height,
            self.count_ink()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_padding() {
        let mut bmp = Bitmap::new(10, 3);
        assert_eq!(bmp.stride(), 2);
        bmp.set(0, 0, true);
        bmp.set(9, 2, true);
        bmp.set(10, 0, true); // out of range: ignored
        assert!(bmp.get(0, 0) && bmp.get(9, 2) && !bmp.get(1, 0));
        assert_eq!(bmp.row(2), &[0x00, 0x40]);
        assert_eq!(bmp.count_ink(), 2);
        let packed = Bitmap::from_packed(10, 1, vec![0xFF, 0xFF]).unwrap();
        assert_eq!(packed.row(0), &[0xFF, 0xC0]);
        assert!(Bitmap::from_packed(10, 1, vec![0]).is_none());
    }

    #[test]
    fn transpose_and_flip() {
        let mut bmp = Bitmap::new(3, 2);
        bmp.set(2, 0, true);
        let t = bmp.transpose();
        assert_eq!((t.width(), t.height()), (2, 3));
        assert!(t.get(0, 2));
        assert!(bmp.flip_horizontal().get(0, 0));
        assert_eq!(t.transpose(), bmp);
    }

    #[test]
    fn gray_round_trip() {
        let mut bmp = Bitmap::new(9, 4);
        bmp.fill_rect(2, 1, 5, 2, true);
        let back = Bitmap::from_gray_image(&bmp.to_gray_image(), 128);
        assert_eq!(back, bmp);
        assert_eq!(bmp.to_ascii().lines().nth(1), Some("..#####.."));
    }
}
