//! What this binary is: version, git revision and build date, fixed at
//! build time by `build.rs` (`labelhub --version`, `/healthz`,
//! `/readiness`).

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from (12 hex digits), or `unknown`.
pub const REVISION: &str = env!("LABELHUB_REVISION");

/// When it was built (RFC 3339 UTC; `SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("LABELHUB_BUILD_DATE");

/// `labelhub 0.1.0 (revision 0123456789ab, built 2026-12-02T10:00:00Z, aarch64-linux)`.
pub fn version_line() -> String {
    format!(
        "labelhub {VERSION} (revision {REVISION}, built {BUILD_DATE}, {}-{})",
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}
