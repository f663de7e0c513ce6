//! (being built: see issue 2)

/// Placeholder until the encoder lands.
#[derive(Debug)]
pub struct EncodeError;
impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("encode error")
    }
}
