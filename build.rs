//! Build information baked into the binary (`labelhub --version`, `/healthz`):
//!
//! * `LABELHUB_REVISION`: the git commit (12 hex digits, `-dirty` is not
//!   tracked), else the `LABELHUB_REVISION` environment variable (packagers
//!   building from a tarball), else `unknown`.
//! * `LABELHUB_BUILD_DATE`: `SOURCE_DATE_EPOCH` when set (reproducible
//!   builds: Debian and cargo-deb set it), else the time this script ran, as
//!   RFC 3339 UTC. The script reruns when the checked-out commit moves, so a
//!   build of a new commit gets a new date; edits without a commit keep the
//!   date of the last run (re-running on every source change would rebuild
//!   the crate for every test edit).
//!
//! Nothing here may fail the build: without git, without `.git` or with a
//! bad `SOURCE_DATE_EPOCH` the fallbacks above apply (with a warning).

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=LABELHUB_REVISION");

    let revision = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_hexdigit()))
        .or_else(|| {
            std::env::var("LABELHUB_REVISION")
                .ok()
                .filter(|r| !r.trim().is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string());
    watch_git();

    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => match v.trim().parse::<i64>() {
            Ok(secs) if secs >= 0 => secs,
            _ => {
                println!("cargo:warning=SOURCE_DATE_EPOCH={v} is not a number of seconds; using the current time");
                now()
            }
        },
        Err(_) => now(),
    };
    println!("cargo:rustc-env=LABELHUB_REVISION={revision}");
    println!("cargo:rustc-env=LABELHUB_BUILD_DATE={}", rfc3339(epoch));
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs git in the crate directory; `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reruns this script when HEAD or the branch it points at moves. Only
/// existing files are named: cargo reruns every time for a missing one.
fn watch_git() {
    let mut paths = Vec::new();
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        paths.push(head);
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &reference]) {
            paths.push(path);
        }
    }
    if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
        paths.push(packed);
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    for p in paths {
        let path = Path::new(&dir).join(&p);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
