//! (being built: see issue 2)

/// Placeholder until this part lands.
#[derive(Debug)]
pub struct TransportError;
impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("transport error")
    }
}
