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
///
/// packbits 0.6 is a byte-at-a-time state machine; its output is fully
/// described by the runs of equal bytes, which this walks directly:
/// - a run of `L >= 2` equal bytes is a repeat run, split as packbits 0.6
///   splits it: with `P = L - 1` equal pairs, `(P - 1) / 127` runs of 127
///   and then one run of the remaining `P - 127 * that + 1` bytes (so 128 is
///   one run `81`, 129 is `82 FF`);
/// - single bytes collect into a literal run, flushed at 127 bytes before
///   the next one is added, except that the very last byte of the input is
///   always added (a literal of 128, header `7F`, can end the output).
///
/// The test `same_bytes_as_the_state_machine` checks this against a direct
/// port of the Python code.
pub fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    const MAX: usize = 127;
    let n = data.len();
    let mut lit_start = 0;
    let mut lit_len = 0;
    let mut i = 0;
    while i < n {
        let byte = data[i];
        let run = if data.get(i + 1) == Some(&byte) {
            2 + data[i + 2..].iter().take_while(|&&b| b == byte).count()
        } else {
            1
        };
        if run >= 2 {
            if lit_len > 0 {
                out.push((lit_len - 1) as u8);
                out.extend_from_slice(&data[lit_start..lit_start + lit_len]);
                lit_len = 0;
            }
            let pairs = run - 1;
            let full = (pairs - 1) / MAX;
            for _ in 0..full {
                out.push((257 - MAX) as u8);
                out.push(byte);
            }
            let rest = pairs - MAX * full + 1;
            out.push((257 - rest) as u8);
            out.push(byte);
        } else {
            if lit_len == MAX && i + 1 < n {
                out.push((lit_len - 1) as u8);
                out.extend_from_slice(&data[lit_start..lit_start + lit_len]);
                lit_len = 0;
            }
            if lit_len == 0 {
                lit_start = i;
            }
            lit_len += 1;
        }
        i += run;
    }
    if lit_len > 0 {
        out.push((lit_len - 1) as u8);
        out.extend_from_slice(&data[lit_start..lit_start + lit_len]);
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

    /// A direct port of packbits 0.6's `encode` state machine.
    fn reference(data: &[u8]) -> Vec<u8> {
        const MAX_LENGTH: usize = 127;
        let mut result = Vec::new();
        if data.is_empty() {
            return result;
        }
        if data.len() == 1 {
            return vec![0, data[0]];
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut pos = 0;
        let mut repeat_count = 0usize;
        let mut rle = false;
        while pos < data.len() - 1 {
            let current = data[pos];
            if data[pos] == data[pos + 1] {
                if !rle {
                    if !buf.is_empty() {
                        result.push((buf.len() - 1) as u8);
                        result.append(&mut buf);
                    }
                    rle = true;
                    repeat_count = 1;
                } else {
                    if repeat_count == MAX_LENGTH {
                        result.push((257 - repeat_count) as u8);
                        result.push(data[pos]);
                        repeat_count = 0;
                    }
                    repeat_count += 1;
                }
            } else if rle {
                repeat_count += 1;
                result.push((257 - repeat_count) as u8);
                result.push(data[pos]);
                rle = false;
                repeat_count = 0;
            } else {
                if buf.len() == MAX_LENGTH {
                    result.push((buf.len() - 1) as u8);
                    result.append(&mut buf);
                }
                buf.push(current);
            }
            pos += 1;
        }
        if rle {
            repeat_count += 1;
            result.push((257 - repeat_count) as u8);
            result.push(data[pos]);
        } else {
            buf.push(data[pos]);
            result.push((buf.len() - 1) as u8);
            result.append(&mut buf);
        }
        result
    }

    #[test]
    fn same_bytes_as_the_state_machine() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..700usize {
            for alphabet in [2u64, 3, 40] {
                // Mostly long runs for small alphabets, literals for big ones.
                let mut row = Vec::with_capacity(len);
                while row.len() < len {
                    let byte = (next() % alphabet) as u8;
                    let run = 1 + (next() % if alphabet == 40 { 2 } else { 300 }) as usize;
                    row.extend(std::iter::repeat_n(byte, run.min(len - row.len())));
                }
                assert_eq!(
                    encode(&row),
                    reference(&row),
                    "len {len} alphabet {alphabet}"
                );
            }
        }
        for len in [126, 127, 128, 129, 130, 254, 255, 256, 257, 381, 382] {
            let zeros = vec![0u8; len];
            assert_eq!(encode(&zeros), reference(&zeros), "{len} zeros");
            let lits: Vec<u8> = (0..len).map(|i| (i % 2) as u8).collect();
            assert_eq!(encode(&lits), reference(&lits), "{len} literals");
        }
    }

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
