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

use rusqlite::{params, Connection, OptionalExtension};

use super::jobs::StoredPage;
use super::labels::RenderedPage;
use super::HubError;

/// The deflate level. Measured on rendered labels (`cargo bench --bench
/// render`, medians, one run; time in µs / bytes; level 4 is the hub's own
/// path with a kept compressor, levels 1 and 6 set one up per page):
///
/// | label (bytes packed) | level 4 | level 1 | level 6 | miniz_oxide 4 |
/// |---|---|---|---|---|
/// | 12 mm text (2,310) | 24 / 396 | 10 / 670 | 33 / 384 | 34 / 384 |
/// | 12 mm QR (2,940) | 19 / 581 | 12 / 928 | 37 / 563 | 49 / 572 |
/// | 62 mm text (81,432) | 190 / 2,368 | 51 / 4,474 | 389 / 1,945 | 500 / 2,604 |
/// | 62 mm QR (141,984) | 361 / 3,981 | 128 / 10,868 | 700 / 3,083 | 864 / 4,129 |
///
/// Level 1 stores up to 2.7 times the bytes (every page stays in the
/// database while its jobs do); level 6 takes twice the time for up to a
/// fifth less. miniz_oxide (at level 4 with a kept compressor) was the
/// hub's deflate before: 1.4 to 2.6 times zlib-rs's time.
const LEVEL: i32 = 4;

/// Compressors kept for the next page (at most [`KEPT`]). A compressor is
/// about 300 KB; setting one up per page cost 3 to 6 µs on a 12 mm label
/// and 5 to 86 µs on a 62 mm one (page faults and zeroing).
static COMPRESSORS: Mutex<Vec<zlib_rs::Deflate>> = Mutex::new(Vec::new());
const KEPT: usize = 4;

/// Raw deflate (no zlib header, 32 KiB window) at [`LEVEL`], with a kept
/// compressor.
fn deflate(data: &[u8]) -> Vec<u8> {
    let kept = COMPRESSORS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let mut c = kept.unwrap_or_else(|| zlib_rs::Deflate::new(LEVEL, false, 15));
    // Enough for any input (the bound of the zlib format, whose header and
    // trailer raw deflate leaves out), so one call finishes the stream.
    let mut out = vec![0; zlib_rs::compress_bound(data.len())];
    let res = c.compress(data, &mut out, zlib_rs::DeflateFlush::Finish);
    if !matches!(res, Ok(zlib_rs::Status::StreamEnd)) {
        // Not expected with a bound-sized output; the page is still stored,
        // in the same format, and this compressor is not kept.
        log::warn!("zlib-rs deflate did not finish ({res:?}); compressing with miniz_oxide");
        return miniz_oxide::deflate::compress_to_vec(data, LEVEL as u8);
    }
    out.truncate(c.total_out() as usize);
    out.shrink_to_fit();
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
                let (black, red) = (deflate(black), red.as_deref().map(deflate));
                tx.prepare_cached(
                    "UPDATE bitmaps SET encoding = 'deflate', black = ?1, red = ?2 WHERE id = ?3",
                )?
                .execute(params![black, red, id])?;
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
    fn deflate_round_trips_any_input_and_shrinks_label_rows() {
        // Incompressible bytes (a xorshift) need more than their own length.
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
        for data in [&[][..], &b"a"[..], &noise, &rows] {
            let z = deflate(data);
            assert_eq!(inflate(&z, data.len()), data, "{} bytes", data.len());
            // The same input, the same bytes (a retried submission stores
            // what the first one did).
            assert_eq!(deflate(data), z);
        }
        assert!(deflate(&rows).len() < rows.len() / 20);
        assert!(deflate(&noise).len() < noise.len() + noise.len() / 100 + 64);
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
