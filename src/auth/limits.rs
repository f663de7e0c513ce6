//! Limits on request content that the front door cannot see: JSON nesting.
//!
//! serde_json stops at 128 levels on its own; labelhub's request shapes
//! need fewer than ten, so anything deeper than [`MAX_JSON_DEPTH`] is
//! refused before a parser or a handler spends time on it.
//!
//! **Invariant:** [`json_depth`] is one pass over the bytes with constant
//! memory; it never fails, whatever the input (it only counts brackets
//! outside strings, honouring backslash escapes).

/// Deepest accepted nesting of JSON arrays and objects in a request body.
pub const MAX_JSON_DEPTH: usize = 32;

/// The maximum nesting depth of `[`/`{` in `bytes`, treating them as JSON
/// text (brackets inside strings do not count). Not a validator: malformed
/// JSON gets a number too, and the parser refuses it afterwards.
pub fn json_depth(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(b""), 0);
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(b"{}"), 1);
        assert_eq!(json_depth(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(json_depth(br#"{"a":"[[[[{{{{"}"#), 1);
        assert_eq!(json_depth(br#"{"a":"\"[[[["}"#), 1);
        assert_eq!(json_depth(br#"["\\", [[]]]"#), 3);
        assert_eq!(json_depth(&[b'['; 100_000]), 100_000);
        assert_eq!(json_depth(b"]]]]{"), 1, "stray closers do not underflow");
    }
}
