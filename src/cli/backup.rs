//! `labelhub backup -o FILE` and `labelhub restore FILE`: the CLI face of
//! `hub::backup` (see there for how the copy stays consistent and why a
//! restore needs the hub stopped).

use std::path::PathBuf;

use lexopt::prelude::*;

use super::CliError;
use crate::hub::backup;

const BACKUP_USAGE: &str = "\
labelhub backup -o FILE [--data-dir DIR]: a consistent copy of the database

Safe while the hub runs (SQLite's online backup API: a snapshot of the last
commit; the hub keeps printing). The copy is one self-contained SQLite file,
checked with PRAGMA integrity_check before it appears at FILE.

OPTIONS:
    -o, --output FILE   where to write the backup (required)
    --data-dir DIR      the hub's data directory (default: PRINTER_HUB_DATA_DIR, else ./data)";

const RESTORE_USAGE: &str = "\
labelhub restore FILE [--data-dir DIR] [-o REPORT]: put a backup in place

Stop the hub first (systemctl stop labelhub); restore refuses while it runs.
Checks that FILE is a labelhub database that passes PRAGMA integrity_check and
whose schema this binary can run (a newer one is refused; an older one is
migrated by the next start). The replaced database is kept beside it as
labelhub.db.before-restore-<time>.

OPTIONS:
    --data-dir DIR      the hub's data directory (default: PRINTER_HUB_DATA_DIR, else ./data)
    -o, --output FILE   also write the report as JSON to FILE";

fn default_data_dir() -> PathBuf {
    std::env::var_os("PRINTER_HUB_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./data"))
}

/// `labelhub backup`.
pub fn run_backup(mut args: lexopt::Parser) -> Result<(), CliError> {
    let mut output = None;
    let mut data_dir = None;
    while let Some(arg) = args.next()? {
        match arg {
            Short('o') | Long("output") => output = Some(PathBuf::from(args.value()?)),
            Long("data-dir") => data_dir = Some(PathBuf::from(args.value()?)),
            Short('h') | Long("help") => {
                println!("{BACKUP_USAGE}");
                return Ok(());
            }
            other => return Err(CliError::Usage(other.unexpected().to_string())),
        }
    }
    let output = output.ok_or_else(|| CliError::Usage("-o/--output FILE is required".into()))?;
    let data_dir = data_dir.unwrap_or_else(default_data_dir);
    let db = data_dir.join("labelhub.db");
    let info = backup::backup_to(&db, &output).map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!(
        "labelhub backup: {} -> {}: {} bytes, schema {}, {} jobs, {} printers, integrity {}",
        db.display(),
        output.display(),
        info.bytes,
        info.schema_version,
        info.jobs,
        info.printers,
        info.integrity
    );
    Ok(())
}

/// `labelhub restore`.
pub fn run_restore(mut args: lexopt::Parser) -> Result<(), CliError> {
    let mut file = None;
    let mut data_dir = None;
    let mut output = None;
    while let Some(arg) = args.next()? {
        match arg {
            Long("data-dir") => data_dir = Some(PathBuf::from(args.value()?)),
            Short('o') | Long("output") => output = Some(PathBuf::from(args.value()?)),
            Short('h') | Long("help") => {
                println!("{RESTORE_USAGE}");
                return Ok(());
            }
            Value(v) if file.is_none() => file = Some(PathBuf::from(v)),
            other => return Err(CliError::Usage(other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::Usage("the backup FILE is required".into()))?;
    let data_dir = data_dir.unwrap_or_else(default_data_dir);
    let report = backup::restore(&data_dir, &file, crate::hub::now_ms())
        .map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!(
        "labelhub restore: {} -> {}: schema {}, {} jobs, {} printers{}",
        file.display(),
        data_dir.join("labelhub.db").display(),
        report.restored.schema_version,
        report.restored.jobs,
        report.restored.printers,
        match &report.previous {
            Some(p) => format!("; the previous database is now {}", p.display()),
            None => String::new(),
        }
    );
    if report.restored.schema_version < crate::hub::db::SCHEMA_VERSION {
        eprintln!(
            "labelhub restore: schema {} will be migrated to {} when the hub starts",
            report.restored.schema_version,
            crate::hub::db::SCHEMA_VERSION
        );
    }
    if let Some(out) = output {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Failed(format!("cannot encode the report: {e}")))?;
        super::write_output(Some(&out), &format!("{text}\n"))?;
    }
    Ok(())
}
