//! TIFF PackBits, as Brother printers take it for one raster line (`M 02`).
//!
//! Format: a header byte `h` followed by data. `h` in 0..=127 copies the next
//! `h + 1` bytes; `h` in 129..=255 repeats the next byte `257 - h` times;
//! `h = 128` is a no-op.
//!
//! **Invariant:** [`encode`] makes exactly the bytes of the PyPI `packbits`
//! 0.6 encoder that brother_ql and ptouch use (reference §2.11), so encoded
//! streams can match the reference vectors byte for byte: every run of two or
//! more equal bytes becomes a repeat run, literal runs hold at most 127 bytes
//! (128 only at the very end), repeat runs at most 127 bytes except a
//! trailing run of exactly 128. Its output is always valid PackBits.
//! [`decode`] is strict: it reports truncated data and output that would
//! overflow the raster line, naming the offset inside the packed data.

use std::fmt;

/// Appends the PackBits encoding of `data` to `out` (packbits 0.6 run choice).
pub fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    // A direct port of packbits 0.6's state machine; its quirks (where a
    // long run is split, how the last byte is handled) are what make the
    // output byte-identical, so the structure is kept, not "improved".
    const MAX_LENGTH: usize = 127;
    match data.len() {
        0 => return,
        1 => {
            out.push(0);
            out.push(data[0]);
            return;
        }
        _ => {}
    }
    let mut raw_start = 0; // start of the pending literal bytes
    let mut raw_len = 0; // number of pending literal bytes
    let mut repeat_count = 0usize;
    let mut in_rle = false;
    let mut pos = 0;

    fn finish_raw(out: &mut Vec<u8>, data: &[u8], start: usize, len: &mut usize) {
        if *len == 0 {
            return;
        }
        out.push((*len - 1) as u8);
        out.extend_from_slice(&data[start..start + *len]);
        *len = 0;
    }
    fn finish_rle(out: &mut Vec<u8>, byte: u8, repeat_count: usize) {
        // 256 - (count - 1), as a byte: 2 -> 0xFF, 128 -> 0x81.
        out.push((257 - repeat_count) as u8);
        out.push(byte);
    }

    while pos < data.len() - 1 {
        if data[pos] == data[pos + 1] {
            if !in_rle {
                finish_raw(out, data, raw_start, &mut raw_len);
                in_rle = true;
                repeat_count = 1;
            } else {
                if repeat_count == MAX_LENGTH {
                    finish_rle(out, data[pos], repeat_count);
                    repeat_count = 0;
                }
                repeat_count += 1;
            }
        } else if in_rle {
            repeat_count += 1;
            finish_rle(out, data[pos], repeat_count);
            in_rle = false;
            repeat_count = 0;
        } else {
            if raw_len == MAX_LENGTH {
                finish_raw(out, data, raw_start, &mut raw_len);
            }
            if raw_len == 0 {
                raw_start = pos;
            }
            raw_len += 1;
        }
        pos += 1;
    }
    if in_rle {
        repeat_count += 1;
        finish_rle(out, data[pos], repeat_count);
    } else {
        if raw_len == 0 {
            raw_start = pos;
        }
        raw_len += 1;
        finish_raw(out, data, raw_start, &mut raw_len);
    }
}

/// The PackBits encoding of `data` (packbits 0.6 run choice).
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 2);
    encode_into(data, &mut out);
    out
}

/// What is wrong with a PackBits buffer. Offsets are inside the packed data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackbitsError {
    /// A literal header announces more bytes than are left.
    TruncatedLiteral {
        offset: usize,
        wanted: usize,
        left: usize,
    },
    /// A repeat header is the last byte (its value byte is missing).
    TruncatedRepeat { offset: usize },
    /// The unpacked data would be longer than the raster line.
    Overflow { offset: usize, limit: usize },
}

impl PackbitsError {
    /// Offset of the offending header inside the packed data.
    pub fn offset(&self) -> usize {
        match self {
            PackbitsError::TruncatedLiteral { offset, .. }
            | PackbitsError::TruncatedRepeat { offset }
            | PackbitsError::Overflow { offset, .. } => *offset,
        }
    }
}

impl fmt::Display for PackbitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackbitsError::TruncatedLiteral {
                offset,
                wanted,
                left,
            } => write!(
                f,
                "PackBits literal header at +{offset} wants {wanted} bytes, only {left} left"
            ),
            PackbitsError::TruncatedRepeat { offset } => {
                write!(f, "PackBits repeat header at +{offset} has no value byte")
            }
            PackbitsError::Overflow { offset, limit } => write!(
                f,
                "PackBits run at +{offset} unpacks past the {limit}-byte raster line"
            ),
        }
    }
}

impl std::error::Error for PackbitsError {}

/// Unpacks `data` into `out` (appending), producing at most `limit` bytes.
/// Strict: a truncated run or more than `limit` bytes of output is an error.
pub fn decode_into(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), PackbitsError> {
    let start_len = out.len();
    let mut pos = 0;
    while pos < data.len() {
        let header = data[pos];
        let at = pos;
        pos += 1;
        let produced = out.len() - start_len;
        match header {
            0..=127 => {
                let n = usize::from(header) + 1;
                let left = data.len() - pos;
                if n > left {
                    return Err(PackbitsError::TruncatedLiteral {
                        offset: at,
                        wanted: n,
                        left,
                    });
                }
                if produced + n > limit {
                    return Err(PackbitsError::Overflow { offset: at, limit });
                }
                out.extend_from_slice(&data[pos..pos + n]);
                pos += n;
            }
            128 => {}
            129..=255 => {
                let n = 257 - usize::from(header);
                let Some(&value) = data.get(pos) else {
                    return Err(PackbitsError::TruncatedRepeat { offset: at });
                };
                if produced + n > limit {
                    return Err(PackbitsError::Overflow { offset: at, limit });
                }
                out.resize(out.len() + n, value);
                pos += 1;
            }
        }
    }
    Ok(())
}

/// Unpacks `data`, producing at most `limit` bytes.
pub fn decode(data: &[u8], limit: usize) -> Result<Vec<u8>, PackbitsError> {
    let mut out = Vec::with_capacity(limit.min(4096));
    decode_into(data, limit, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_packbits_0_6_examples_from_the_reference() {
        assert_eq!(encode(&[]), Vec::<u8>::new());
        assert_eq!(encode(&[0x42]), vec![0x00, 0x42]);
        assert_eq!(
            encode(&[1, 2, 2, 3]),
            vec![0x00, 0x01, 0xFF, 0x02, 0x00, 0x03]
        );
        assert_eq!(encode(&[0; 90]), vec![0xA7, 0x00]);
        assert_eq!(encode(&[0; 129]), vec![0x82, 0x00, 0xFF, 0x00]);
        assert_eq!(encode(&[0; 200]), vec![0x82, 0x00, 0xB8, 0x00]);
        assert_eq!(encode(&[0; 128]), vec![0x81, 0x00]);
        assert_eq!(encode(&[7, 7]), vec![0xFF, 0x07]);
    }

    #[test]
    fn literal_runs_split_at_127() {
        let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8 ^ 0x55).collect();
        let packed = encode(&data);
        assert_eq!(packed[0], 0x7E);
        assert_eq!(decode(&packed, 300).unwrap(), data);
    }

    #[test]
    fn spec_example_decodes() {
        let packed = [
            0xED, 0x00, 0xFF, 0x22, 0x05, 0x23, 0xBA, 0xBF, 0xA2, 0x22, 0x2B,
        ];
        let mut want = vec![0u8; 20];
        want.extend_from_slice(&[0x22, 0x22, 0x23, 0xBA, 0xBF, 0xA2, 0x22, 0x2B]);
        assert_eq!(decode(&packed, 90).unwrap(), want);
        // 0x80 is a no-op.
        assert_eq!(decode(&[0x80, 0x00, 0x01], 90).unwrap(), vec![0x01]);
    }

    #[test]
    fn round_trip_pseudo_random_rows() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..400 {
            let row: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Few distinct values so that runs of every length occur.
                    [0u8, 0xFF, 0x0F][(seed % 3) as usize]
                })
                .collect();
            let packed = encode(&row);
            assert_eq!(decode(&packed, len).unwrap(), row, "len {len}");
        }
    }

    #[test]
    fn strict_decode_errors() {
        assert_eq!(
            decode(&[0x03, 0x01], 90),
            Err(PackbitsError::TruncatedLiteral {
                offset: 0,
                wanted: 4,
                left: 1
            })
        );
        assert_eq!(
            decode(&[0x00, 0x01, 0xFE], 90),
            Err(PackbitsError::TruncatedRepeat { offset: 2 })
        );
        let err = decode(&[0xA7, 0x00, 0x00, 0x01], 90).unwrap_err();
        assert_eq!(
            err,
            PackbitsError::Overflow {
                offset: 2,
                limit: 90
            }
        );
        assert!(err.to_string().contains("+2"));
    }
}
