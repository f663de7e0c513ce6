//! Base64, the crate's one implementation: standard padded encoding
//! ([`encode`], for image uploads), unpadded URL-safe encoding
//! ([`encode_url`], RFC 4648 §5, for API keys), and strict decoding of
//! uploaded images (standard or URL-safe alphabet, `=` padding optional,
//! ASCII whitespace ignored, an optional `data:...;base64,` prefix). Small
//! enough to own; the caller bounds the input length before decoding.

/// Why base64 text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base64Error {
    /// A byte outside the alphabet, with its offset in the text.
    InvalidByte { offset: usize, byte: u8 },
    /// The data ends in the middle of a byte (one stray character).
    Truncated,
}

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base64Error::InvalidByte { offset, byte } => {
                write!(f, "byte 0x{byte:02X} at offset {offset} is not base64")
            }
            Base64Error::Truncated => f.write_str("base64 data ends mid-byte"),
        }
    }
}

fn value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Strips a `data:<type>;base64,` prefix if there is one.
pub fn strip_data_url(text: &str) -> &str {
    if text.starts_with("data:") {
        if let Some(pos) = text.find(";base64,") {
            return &text[pos + ";base64,".len()..];
        }
    }
    text
}

/// Upper bound of the decoded size of `len` base64 characters.
pub fn decoded_len_bound(len: usize) -> usize {
    len / 4 * 3 + 3
}

/// The standard alphabet (RFC 4648 §4).
const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// The URL- and filename-safe alphabet (RFC 4648 §5).
pub const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes bytes as standard, padded base64.
pub fn encode(bytes: &[u8]) -> String {
    encode_with(bytes, STANDARD, true)
}

/// Encodes bytes as unpadded URL-safe base64 (RFC 4648 §5).
pub fn encode_url(bytes: &[u8]) -> String {
    encode_with(bytes, URL_SAFE, false)
}

fn encode_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(alphabet[(n >> (18 - 6 * k) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64 text (standard or URL-safe alphabet).
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(decoded_len_bound(text.len()));
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padding = false;
    for (offset, &byte) in text.as_bytes().iter().enumerate() {
        if byte.is_ascii_whitespace() {
            continue;
        }
        if byte == b'=' {
            padding = true;
            continue;
        }
        let v = match value(byte) {
            Some(v) if !padding => v,
            _ => return Err(Base64Error::InvalidByte { offset, byte }),
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err(Base64Error::Truncated);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc.trim_end_matches('=')).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode("Zm9v\nYmFy").unwrap(), b"foobar");
        assert_eq!(strip_data_url("data:image/png;base64,Zm9v"), "Zm9v");
    }

    #[test]
    fn encode_url_matches_rfc4648_vectors() {
        assert_eq!(encode_url(b""), "");
        assert_eq!(encode_url(b"f"), "Zg");
        assert_eq!(encode_url(b"fo"), "Zm8");
        assert_eq!(encode_url(b"foo"), "Zm9v");
        assert_eq!(encode_url(b"foob"), "Zm9vYg");
        assert_eq!(encode_url(b"fooba"), "Zm9vYmE");
        assert_eq!(encode_url(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(encode_url(&[0u8; 32]).len(), 43);
        assert_eq!(decode(&encode_url(&[0xfb, 0xff])).unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            decode("Zm9v!"),
            Err(Base64Error::InvalidByte {
                offset: 4,
                byte: b'!'
            })
        );
        assert_eq!(decode("Z"), Err(Base64Error::Truncated));
        assert!(decode("Zg==Zg").is_err());
        assert!(decode("Zm9vé").is_err());
    }
}
