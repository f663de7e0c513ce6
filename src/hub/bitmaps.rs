//! Stored label bitmaps: one `bitmaps` row per submitted
//! item, deflate-compressed; every copy of the item (and every retry of one
//! of its jobs) points at that row through `jobs.bitmap_id`.
//!
//! **Invariants.**
//! * A label is compressed once, right after it is rendered, and
//!   decompressed once, right before its page is sent; nothing in between
//!   holds it uncompressed.
//! * A stored bitmap is read back only with a size limit taken from its own
//!   `width`/`height`; anything else (bad deflate data, a wrong length)
//!   reads as a damaged row, never as a bigger allocation or a panic.
//! * A row lives while a job points at it: the trigger `jobs_bitmap_release`
//!   (sql/0013_quotas.sql) deletes it with its last job.
//!
//! Compression: a 62 mm × 100 mm label (1109 × 696 dots, 96,744 bytes
//! packed) stores in ~3 to 5 KB; the 1-bit rows repeat, which deflate's
//! window catches and per-row PackBits does not (~9 KB even with row XOR).

use std::sync::{Mutex, PoisonError};

use miniz_oxide::deflate::core::{
    self as miniz, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use rusqlite::{params, Connection, OptionalExtension};

use super::jobs::StoredPage;
use super::labels::RenderedPage;
use super::HubError;

/// The deflate level. Measured on rendered labels (`cargo bench --bench
/// render`, miniz_oxide):
/// a 12 mm text / QR label (2,310 / 2,940 bytes packed) takes 29 / 32 µs
/// and 384 / 572 bytes at level 4, 39 / 46 µs and 380 / 562 bytes at 6;
/// a 62 mm text / QR label (81 / 142 KB) 265 / 462 µs and 2.6 / 4.1 KB at
/// 4, 675 / 988 µs and 2.0 / 3.0 KB at 6. Deflate was a tenth of a
/// `POST /print`; level 1 is smaller still in time but a third bigger.
const LEVEL: u8 = 4;

/// Compressors kept for the next page (at most [`KEPT`]). A compressor is
/// about 300 KB; a fresh one per layer cost a page fault per 4 KB of it and
/// its zeroing, about a tenth of a `POST /print` (`cargo bench --bench hub
/// -- front`, profiled).
static COMPRESSORS: Mutex<Vec<Box<CompressorOxide>>> = Mutex::new(Vec::new());
const KEPT: usize = 4;

/// Raw deflate at [`LEVEL`] (what `miniz_oxide::deflate::compress_to_vec`
/// gives), with a kept compressor.
fn deflate(data: &[u8]) -> Vec<u8> {
    let kept = COMPRESSORS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let mut c = kept.unwrap_or_else(|| {
        // Window bits 0: raw deflate, no zlib header.
        let flags = create_comp_flags_from_zip_params(LEVEL.into(), 0, 0);
        Box::new(CompressorOxide::new(flags))
    });
    let mut out = vec![0; (data.len() / 2).max(64)];
    let (mut input, mut at) = (data, 0);
    loop {
        let (status, read, written) =
            miniz::compress(&mut c, input, &mut out[at..], TDEFLFlush::Finish);
        at += written;
        input = input.get(read..).unwrap_or_default();
        match status {
            TDEFLStatus::Okay => {
                if out.len() - at < 64 {
                    out.resize(out.len() * 2, 0);
                }
            }
            // Done; the other statuses cannot come with a whole input, a
            // non-empty output and Finish, and end the loop all the same.
            _ => break,
        }
    }
    out.truncate(at);
    c.reset();
    let mut kept = COMPRESSORS.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() < KEPT {
        kept.push(c);
    }
    out
}

/// A compressed page, ready to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub width: u32,
    pub height: u32,
    pub black: Vec<u8>,
    pub red: Option<Vec<u8>>,
}

impl Packed {
    /// Bytes held (the compressed layers).
    pub fn len(&self) -> usize {
        self.black.len() + self.red.as_ref().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A stored row: encoding (or id), width, height, black, red.
type Row<K> = (K, u32, u32, Vec<u8>, Option<Vec<u8>>);

/// Compresses a rendered page.
pub fn compress(page: &RenderedPage) -> Packed {
    Packed {
        width: page.black.width(),
        height: page.black.height(),
        black: deflate(page.black.as_bytes()),
        red: page.red.as_ref().map(|r| deflate(r.as_bytes())),
    }
}

/// The packed size of one layer of a `width` × `height` bitmap.
fn raw_len(width: u32, height: u32) -> usize {
    (width as usize).div_ceil(8) * height as usize
}

/// Inflates one layer; a damaged layer gives an empty vector (which
/// `labels::unpack` refuses by its size), never more than `expected` bytes.
fn inflate(data: &[u8], expected: usize) -> Vec<u8> {
    match miniz_oxide::inflate::decompress_to_vec_with_limit(data, expected) {
        Ok(v) if v.len() == expected => v,
        _ => Vec::new(),
    }
}

/// Inserts a compressed page; returns its id.
pub fn insert(conn: &Connection, p: &Packed) -> Result<i64, HubError> {
    conn.prepare_cached(
        "INSERT INTO bitmaps (encoding, width, height, black, red) VALUES ('deflate', ?1, ?2, ?3, ?4)",
    )?
    .execute(params![p.width, p.height, p.black, p.red])?;
    Ok(conn.last_insert_rowid())
}

/// Loads and decompresses the bitmap of job `job_id`.
pub fn of_job(conn: &Connection, job_id: &str) -> Result<StoredPage, HubError> {
    let row: Option<Row<String>> = conn
        .prepare_cached(
            "SELECT b.encoding, b.width, b.height, b.black, b.red
               FROM jobs j JOIN bitmaps b ON b.id = j.bitmap_id WHERE j.id = ?1",
        )?
        .query_row([job_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((encoding, width, height, black, red)) = row else {
        return Err(HubError::not_found("job", job_id));
    };
    Ok(match encoding.as_str() {
        "deflate" => {
            let n = raw_len(width, height);
            StoredPage {
                width,
                height,
                black: inflate(&black, n),
                red: red.map(|r| inflate(&r, n)),
            }
        }
        _ => StoredPage {
            width,
            height,
            black,
            red,
        },
    })
}

/// Compresses the rows the migration stored `raw`, a few per transaction
/// (so a big old database does not hold the lock for long). Returns how
/// many were converted. Runs when the hub opens, before any thread.
pub fn compress_legacy(db: &super::Db) -> Result<usize, HubError> {
    const CHUNK: i64 = 64;
    let mut done = 0;
    loop {
        let n = db.write(|tx| {
            let rows: Vec<Row<i64>> = tx
                .prepare_cached(
                    "SELECT id, width, height, black, red FROM bitmaps WHERE encoding = 'raw'
                     ORDER BY id LIMIT ?1",
                )?
                .query_map([CHUNK], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<_, _>>()?;
            for (id, _, _, black, red) in &rows {
                let z = |b: &[u8]| miniz_oxide::deflate::compress_to_vec(b, LEVEL);
                tx.prepare_cached(
                    "UPDATE bitmaps SET encoding = 'deflate', black = ?1, red = ?2 WHERE id = ?3",
                )?
                .execute(params![z(black), red.as_deref().map(z), id])?;
            }
            Ok(rows.len())
        })?;
        done += n;
        if n < CHUNK as usize {
            break;
        }
    }
    if done > 0 {
        log::info!("compressed {done} stored label bitmaps of an older database");
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitmap::Bitmap;

    #[test]
    fn a_kept_compressor_gives_the_bytes_of_a_fresh_one() {
        // Incompressible bytes (a xorshift) outgrow the first output buffer.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let rows: Vec<u8> = (0..96_744).map(|i| ((i / 139) % 7 * 31) as u8).collect();
        for _ in 0..3 {
            for data in [&[][..], &b"a"[..], &noise, &rows] {
                let fresh = miniz_oxide::deflate::compress_to_vec(data, LEVEL);
                assert_eq!(deflate(data), fresh, "{} bytes", data.len());
            }
        }
        assert!(!COMPRESSORS.lock().unwrap().is_empty());
    }

    #[test]
    fn round_trip_and_damage_is_refused_not_inflated() {
        let mut b = Bitmap::new(300, 64);
        b.fill_rect(10, 5, 100, 20, true);
        let mut r = Bitmap::new(300, 64);
        r.fill_rect(200, 30, 50, 20, true);
        let page = RenderedPage {
            black: b.clone(),
            red: Some(r.clone()),
        };
        let p = compress(&page);
        assert!(p.black.len() < b.as_bytes().len() / 10, "{}", p.black.len());
        let n = raw_len(300, 64);
        assert_eq!(inflate(&p.black, n), b.as_bytes());
        assert_eq!(inflate(p.red.as_ref().unwrap(), n), r.as_bytes());
        // Too short a limit, garbage, and a bomb all read as damaged.
        assert!(inflate(&p.black, n - 1).is_empty());
        assert!(inflate(&[1, 2, 3], n).is_empty());
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 10 * n], 6);
        assert!(inflate(&bomb, n).is_empty());
    }
}
