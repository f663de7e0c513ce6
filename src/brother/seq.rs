//! Numbered output files (`000001.bin`, `000042.png`, `job-000007.bin`):
//! where a directory's numbering continues. Shared by the `dir://`
//! transport and the emulator, so neither imports the other.

use std::fs;
use std::path::Path;

/// The largest `<prefix><digits><suffix>` sequence number in `dir` (0 if
/// none): `dir://` transports' `.bin` files and the emulator's PNGs and jobs.
pub fn max_seq(dir: &Path, prefix: &str, suffix: &str) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_seq_ignores_other_files() {
        let dir = std::env::temp_dir().join(format!("labelhub-maxseq-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        for name in [
            "000003.bin",
            "17.bin",
            "x7.bin",
            ".bin",
            "000099.png",
            "5.bin.part",
        ] {
            fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(max_seq(&dir, "", ".bin"), 17);
        assert_eq!(max_seq(&dir, "", ".png"), 99);
        assert_eq!(max_seq(&dir.join("missing"), "", ".bin"), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
