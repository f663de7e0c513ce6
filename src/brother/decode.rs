//! (being built: see issue 2)

/// Placeholder until this part lands.
#[derive(Debug)]
pub struct DecodeError;
impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decode error")
    }
}
