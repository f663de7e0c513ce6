//! `Canvas`: the renderer's drawing surface, packed exactly like
//! `bitmap::Bitmap` (row-major, MSB first, padding bits zero) so it converts
//! without copying pixels, but with byte-wise rectangle fills: a 62 mm QR code
//! is half a million dots and must not be set one by one.
//!
//! **Invariant:** drawing outside the canvas is clipped (ignored), and the
//! padding bits of each row stay zero.

use crate::bitmap::Bitmap;

pub struct Canvas {
    width: u32,
    height: u32,
    stride: usize,
    data: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        let stride = (width as usize).div_ceil(8);
        Canvas {
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

    /// Bytes of pixel data.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        self.data[y as usize * self.stride + (x as usize >> 3)] & (0x80 >> (x & 7)) != 0
    }

    pub fn set(&mut self, x: u32, y: u32) {
        if x < self.width && y < self.height {
            self.data[y as usize * self.stride + (x as usize >> 3)] |= 0x80 >> (x & 7);
        }
    }

    /// Inks the rectangle `[x, x + w) × [y, y + h)`, clipped.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32) {
        let x_end = x.saturating_add(w).min(self.width);
        let y_end = y.saturating_add(h).min(self.height);
        if x >= x_end || y >= y_end {
            return;
        }
        let (first, last) = (x as usize >> 3, (x_end as usize - 1) >> 3);
        let head = 0xFFu8 >> (x & 7);
        let tail = 0xFFu8 << (7 - ((x_end - 1) & 7));
        for row in y..y_end {
            let line = &mut self.data[row as usize * self.stride..][..self.stride];
            if first == last {
                line[first] |= head & tail;
            } else {
                line[first] |= head;
                line[first + 1..last].fill(0xFF);
                line[last] |= tail;
            }
        }
    }

    /// ORs `src` onto this canvas with its top-left corner at `(x, y)`
    /// (clipped), a byte at a time.
    pub fn draw(&mut self, src: &Canvas, x: u32, y: u32) {
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
            // Bits pushed past the canvas width land in the padding of the
            // last byte: clear them.
            if !self.width.is_multiple_of(8) {
                let last = self.stride - 1;
                dst_row[last] &= 0xFFu8 << (8 - self.width % 8);
            }
        }
    }

    /// Clears every dot that is inked in `mask` (same size), so that the red
    /// and black layers never overlap.
    pub fn subtract(&mut self, mask: &Canvas) {
        if mask.width == self.width && mask.height == self.height {
            for (d, m) in self.data.iter_mut().zip(&mask.data) {
                *d &= !m;
            }
        }
    }

    /// The same picture turned a quarter clockwise: `(x, y)` goes to
    /// `(height - 1 - y, x)`.
    pub fn rotate_cw(&self) -> Canvas {
        let mut res = Canvas::new(self.height, self.width);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    res.set(self.height - 1 - y, x);
                }
            }
        }
        res
    }

    pub fn count_ink(&self) -> u64 {
        self.data.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    pub fn into_bitmap(self) -> Bitmap {
        let (w, h) = (self.width, self.height);
        // Same packing as `Bitmap` (stride = ceil(width / 8), padding bits
        // zero), so `from_packed` always accepts it.
        Bitmap::from_packed(w, h, self.data).unwrap_or_else(|| Bitmap::new(w, h))
    }
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Canvas({}x{}, {} ink)",
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
    fn fill_rect_matches_pixel_fill() {
        for (x, w) in [(0, 1), (3, 2), (5, 9), (7, 1), (8, 8), (2, 30), (0, 37)] {
            let mut c = Canvas::new(37, 3);
            c.fill_rect(x, 1, w, 5);
            let mut b = Bitmap::new(37, 3);
            b.fill_rect(x, 1, w, 5, true);
            assert_eq!(c.into_bitmap(), b, "x={x} w={w}");
        }
    }

    #[test]
    fn draw_matches_pixel_copy() {
        let mut src = Canvas::new(13, 5);
        for (x, y) in [(0, 0), (12, 4), (5, 2), (7, 1), (8, 3)] {
            src.set(x, y);
        }
        for (x, y) in [(0, 0), (3, 1), (8, 0), (15, 2), (26, 4), (40, 0)] {
            let mut fast = Canvas::new(30, 7);
            fast.draw(&src, x, y);
            let mut slow = Bitmap::new(30, 7);
            for sy in 0..5 {
                for sx in 0..13 {
                    if src.get(sx, sy) {
                        slow.set(x + sx, y + sy, true);
                    }
                }
            }
            assert_eq!(fast.into_bitmap(), slow, "at ({x},{y})");
        }
    }

    #[test]
    fn rotate_and_subtract() {
        let mut c = Canvas::new(3, 2);
        c.set(2, 0);
        let r = c.rotate_cw();
        assert_eq!((r.width(), r.height()), (2, 3));
        assert!(r.get(1, 2));
        let mut full = Canvas::new(3, 2);
        full.fill_rect(0, 0, 3, 2);
        full.subtract(&c);
        assert_eq!(full.count_ink(), 5);
        assert!(!full.get(2, 0));
    }
}
