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
    #[inline]
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let byte = self.data[y as usize * self.stride + (x as usize >> 3)];
        byte & (0x80 >> (x & 7)) != 0
    }

    /// Sets one pixel. Out-of-range coordinates are ignored, so drawing code
    /// may clip freely.
    #[inline]
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

    /// Fills the rectangle `[x, x + w) × [y, y + h)` with ink or paper
    /// (clipped to the bitmap), a byte at a time: a 62 mm QR code is half a
    /// million dots and must not be set one by one.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, ink: bool) {
        let x_end = x.saturating_add(w).min(self.width);
        let y_end = y.saturating_add(h).min(self.height);
        if x >= x_end || y >= y_end {
            return;
        }
        let (first, last) = (x as usize >> 3, (x_end as usize - 1) >> 3);
        let head = 0xFFu8 >> (x & 7);
        let tail = 0xFFu8 << (7 - ((x_end - 1) & 7));
        let paint = |byte: &mut u8, mask: u8| {
            if ink {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        };
        for row in y..y_end {
            let line = &mut self.data[row as usize * self.stride..][..self.stride];
            if first == last {
                paint(&mut line[first], head & tail);
            } else {
                paint(&mut line[first], head);
                line[first + 1..last].fill(if ink { 0xFF } else { 0 });
                paint(&mut line[last], tail);
            }
        }
    }

    /// ORs the ink of `src` onto `self` with its top-left corner at
    /// `(x, y)` (clipped), a byte at a time.
    pub fn draw(&mut self, src: &Bitmap, x: u32, y: u32) {
        if x >= self.width || y >= self.height {
            return;
        }
        let shift = x & 7;
        let first = (x >> 3) as usize;
        let rows = src.height.min(self.height - y);
        for sy in 0..rows {
            let src_row = &src.data[sy as usize * src.stride..][..src.stride];
            let dst_start = (y + sy) as usize * self.stride;
            let dst_row = &mut self.data[dst_start..dst_start + self.stride];
            let dst = &mut dst_row[first..];
            if shift == 0 {
                for (d, &b) in dst.iter_mut().zip(src_row) {
                    *d |= b;
                }
            } else {
                let mut carry = 0u8;
                let n = dst.len().min(src_row.len());
                for (d, &b) in dst[..n].iter_mut().zip(src_row) {
                    *d |= (b >> shift) | carry;
                    carry = b << (8 - shift);
                }
                if let Some(d) = dst.get_mut(n) {
                    *d |= carry;
                }
            }
            // Bits pushed past the width land in the padding of the last
            // byte: clear them.
            if !self.width.is_multiple_of(8) {
                let last = self.stride - 1;
                dst_row[last] &= 0xFFu8 << (8 - self.width % 8);
            }
        }
    }

    /// Clears every dot that is inked in `mask` (same size; otherwise
    /// nothing changes), so that a red and a black layer never overlap.
    pub fn subtract(&mut self, mask: &Bitmap) {
        if mask.width == self.width && mask.height == self.height {
            for (d, m) in self.data.iter_mut().zip(&mask.data) {
                *d &= !m;
            }
        }
    }

    /// The same picture turned a quarter clockwise: `(x, y)` goes to
    /// `(height - 1 - y, x)`.
    pub fn rotate_cw(&self) -> Bitmap {
        let h = self.height;
        self.moved(self.height, self.width, |x, y| (h - 1 - y, x))
    }

    /// A `width × height` bitmap with every ink pixel `(x, y)` of `self`
    /// moved to `to(x, y)`.
    fn moved(&self, width: u32, height: u32, to: impl Fn(u32, u32) -> (u32, u32)) -> Bitmap {
        let mut res = Bitmap::new(width, height);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    let (nx, ny) = to(x, y);
                    res.set(nx, ny, true);
                }
            }
        }
        res
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
        self.moved(self.height, self.width, |x, y| (y, x))
    }

    /// Mirrors left-right.
    pub fn flip_horizontal(&self) -> Bitmap {
        let w = self.width;
        self.moved(self.width, self.height, |x, y| (w - 1 - x, y))
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

/// The colour red ink is shown in, in every PNG the crate writes (previews,
/// emulator output, `labelhub decode`).
pub const RED_INK: [u8; 3] = [204, 0, 0];

/// The one bitmap-to-PNG: a page in label orientation, white paper and black
/// ink. Grey-scale without a red layer; with one, RGB with red ink in
/// [`RED_INK`] (black wins where a dot is inked on both layers; a red layer
/// of another size is read as paper outside its bounds).
pub fn to_png(black: &Bitmap, red: Option<&Bitmap>) -> image::ImageResult<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::{ExtendedColorType, ImageEncoder};

    let (w, h) = (black.width, black.height);
    let (pixels, colour) = match red {
        None => {
            // One table lookup per packed byte: 8 grey pixels.
            let mut table = [[255u8; 8]; 256];
            for (byte, px) in table.iter_mut().enumerate() {
                for (bit, p) in px.iter_mut().enumerate() {
                    if byte & (0x80 >> bit) != 0 {
                        *p = 0;
                    }
                }
            }
            let mut out = Vec::with_capacity(w as usize * h as usize);
            for y in 0..h {
                let row = black.row(y);
                for (i, &byte) in row.iter().enumerate() {
                    let n = (w as usize - i * 8).min(8);
                    out.extend_from_slice(&table[usize::from(byte)][..n]);
                }
            }
            (out, ExtendedColorType::L8)
        }
        Some(red) => {
            let mut out = Vec::with_capacity(w as usize * h as usize * 3);
            for y in 0..h {
                let red_row = if y < red.height { red.row(y) } else { &[] };
                for (i, &b) in black.row(y).iter().enumerate() {
                    let r = red_row.get(i).copied().unwrap_or(0) & !b;
                    let n = (w as usize - i * 8).min(8);
                    if b | r == 0 {
                        out.extend_from_slice(&[255; 24][..n * 3]);
                        continue;
                    }
                    for bit in 0..n {
                        let mask = 0x80 >> bit;
                        out.extend_from_slice(if b & mask != 0 {
                            &[0, 0, 0]
                        } else if r & mask != 0 {
                            &RED_INK
                        } else {
                            &[255, 255, 255]
                        });
                    }
                }
            }
            (out, ExtendedColorType::Rgb8)
        }
    };
    // Fast settings: label bitmaps are flat two-tone images that compress
    // well, and previews and the emulator sit in request and print paths.
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Up)
        .write_image(&pixels, w, h, colour)?;
    Ok(png)
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

    /// The byte-wise `fill_rect` and `draw` against pixel-by-pixel drawing.
    fn slow_fill(w: u32, h: u32, (x, y, rw, rh): (u32, u32, u32, u32), ink: bool) -> Bitmap {
        let mut b = Bitmap::new(w, h);
        if !ink {
            for yy in 0..h {
                for xx in 0..w {
                    b.set(xx, yy, true);
                }
            }
        }
        for yy in y..y + rh {
            for xx in x..x + rw {
                b.set(xx, yy, ink);
            }
        }
        b
    }

    #[test]
    fn fill_rect_matches_pixel_fill() {
        for (x, w) in [
            (0, 1),
            (3, 2),
            (5, 9),
            (7, 1),
            (8, 8),
            (2, 30),
            (0, 37),
            (36, 9),
        ] {
            for ink in [true, false] {
                let mut fast = Bitmap::new(37, 3);
                if !ink {
                    fast.fill_rect(0, 0, 37, 3, true);
                }
                fast.fill_rect(x, 1, w, 5, ink);
                assert_eq!(fast, slow_fill(37, 3, (x, 1, w, 5), ink), "x={x} w={w}");
            }
        }
    }

    #[test]
    fn draw_matches_pixel_copy() {
        let mut src = Bitmap::new(13, 5);
        for (x, y) in [(0, 0), (12, 4), (5, 2), (7, 1), (8, 3)] {
            src.set(x, y, true);
        }
        for (x, y) in [(0, 0), (3, 1), (8, 0), (15, 2), (26, 4), (40, 0)] {
            let mut fast = Bitmap::new(30, 7);
            fast.draw(&src, x, y);
            let mut slow = Bitmap::new(30, 7);
            for sy in 0..5 {
                for sx in 0..13 {
                    if src.get(sx, sy) {
                        slow.set(x + sx, y + sy, true);
                    }
                }
            }
            assert_eq!(fast, slow, "at ({x},{y})");
        }
    }

    #[test]
    fn rotate_and_subtract() {
        let mut c = Bitmap::new(3, 2);
        c.set(2, 0, true);
        assert!(c.rotate_cw().get(1, 2));
        assert_eq!(c.rotate_cw(), c.transpose().flip_horizontal());
        let mut full = Bitmap::new(3, 2);
        full.fill_rect(0, 0, 3, 2, true);
        full.subtract(&c);
        assert_eq!(full.count_ink(), 5);
        assert!(!full.get(2, 0));
    }

    #[test]
    fn png_grey_and_red() {
        let mut black = Bitmap::new(11, 2);
        black.fill_rect(0, 0, 3, 1, true);
        let png = to_png(&black, None).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!(img.color(), image::ColorType::L8);
        assert_eq!(Bitmap::from_gray_image(&img.to_luma8(), 128), black);

        let mut red = Bitmap::new(11, 2);
        red.fill_rect(2, 0, 9, 2, true);
        let rgb = image::load_from_memory(&to_png(&black, Some(&red)).unwrap())
            .unwrap()
            .into_rgb8();
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(2, 0).0, [0, 0, 0], "black wins");
        assert_eq!(rgb.get_pixel(10, 1).0, RED_INK);
        assert_eq!(rgb.get_pixel(1, 1).0, [255, 255, 255]);
    }
}
