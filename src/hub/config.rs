//! Configuration of `labelhub serve`, read once from `PRINTER_HUB_*`
//! environment variables. [`Config::from_env`] reports every bad variable at
//! once; the values are never re-read while running.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::brother::transport::{Network, Reach};

/// Every variable, its default and what it means: the README's configuration
/// table is generated from the same words.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("PRINTER_HUB_DATA_DIR", "./data", "database (labelhub.db) and the demo printer's PNGs (emulator/)"),
    ("PRINTER_HUB_LISTEN", "0.0.0.0:8090", "HTTP address; port 0 picks a free port (the bound address is logged)"),
    ("PRINTER_HUB_JOB_RETENTION_DAYS", "30", "terminal jobs, their events and empty batches older than this are deleted; 0 keeps everything"),
    ("PRINTER_HUB_AUDIT_RETENTION_DAYS", "365", "audit rows (key and printer changes) older than this are deleted; 0 keeps everything"),
    ("PRINTER_HUB_RETENTION_INTERVAL_S", "86400", "how often the retention thread runs (it also runs at start)"),
    ("PRINTER_HUB_HTTP_THREADS", "32", "most handler threads (8 always run; more start while all are busy and end after 30 s idle); past 65 requests per thread waiting for an answer, the front answers 503 server_busy"),
    ("PRINTER_HUB_MAX_BODY_BYTES", "33554432", "largest accepted request body"),
    ("PRINTER_HUB_MAX_WAITERS", "4096", "long-poll requests parked at once; beyond it they answer at once"),
    ("PRINTER_HUB_STATUS_POLL_S", "10", "printer status poll interval while idle or paused"),
    ("PRINTER_HUB_SHUTDOWN_TIMEOUT_S", "30", "bound on graceful shutdown (printer threads finish the label in flight)"),
    ("PRINTER_HUB_DEMO_PRINTER", "true", "create the demo PT-P750W emulator printer on a first start with no printer"),
    ("PRINTER_HUB_LOG_LEVEL", "info", "error, warn, info, debug or trace"),
    ("PRINTER_HUB_MAX_QUEUED_PER_PRINTER", "20000", "most labels waiting (queued, paused, printing) on one printer; a submission past it answers 429 printer_queue_full"),
    ("PRINTER_HUB_MAX_QUEUED_PER_KEY", "10000", "most labels waiting from one API key over all printers; a submission past it answers 429 key_queue_full"),
    ("PRINTER_HUB_PREVIEW_CONCURRENCY", "2", "previews rendered at once; more answer 429 preview_busy with Retry-After"),
    ("PRINTER_HUB_PREVIEW_PER_KEY", "1", "previews rendered at once for one API key (or client); more answer 429 preview_busy"),
    // USB discovery.
    ("PRINTER_HUB_AUTO_ADD_USB", "false", "add a newly plugged, supported Brother USB printer as a printer by itself (checked every 5 s)"),
    ("PRINTER_HUB_SYSFS_ROOT", "/", "root under which discovery reads sys/class/usbmisc, sys/bus/usb and dev/ (containers, tests)"),
    ("PRINTER_HUB_ACCESS_LOG", "true", "one info line per request (method, route, status, ms, key prefix, client); false turns it off"),
    ("PRINTER_HUB_DIR_ROOTS", "", "directories (`:`-separated) where `dir://` printers may write besides the data directory"),
    ("PRINTER_HUB_PRINTER_NETWORKS", "", "CIDR networks (`,`-separated) that `tcp://` printers and outbound webhook subscribers must be in; empty = any host"),
];

/// The hub's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    /// `None` disables retention.
    pub retention: Option<Duration>,
    /// Retention of the audit log (auth); `None` keeps it forever.
    pub audit_retention: Option<Duration>,
    pub retention_interval: Duration,
    pub http_threads: usize,
    pub max_body_bytes: usize,
    pub max_waiters: usize,
    pub status_poll: Duration,
    pub shutdown_timeout: Duration,
    pub demo_printer: bool,
    pub log_level: log::LevelFilter,
    /// Quotas: most waiting labels per printer and per key.
    pub max_queued_per_printer: u64,
    pub max_queued_per_key: u64,
    /// Preview pool: renders at once, in total and per key.
    pub preview_concurrency: usize,
    pub preview_per_key: usize,
    /// appliance: add newly plugged USB printers by themselves.
    pub auto_add_usb: bool,
    /// appliance: where discovery finds `sys/` and `dev/`.
    pub sysfs_root: PathBuf,
    /// The per-request access log line (`labelhub::access` target).
    pub access_log: bool,
    /// `dir://` roots besides the data directory (`PRINTER_HUB_DIR_ROOTS`).
    pub dir_roots: Vec<PathBuf>,
    /// `tcp://` printers must be in one of these; empty = any
    /// (`PRINTER_HUB_PRINTER_NETWORKS`).
    pub printer_networks: Vec<Network>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: "0.0.0.0:8090".into(),
            retention: Some(Duration::from_secs(30 * 86_400)),
            audit_retention: Some(Duration::from_secs(365 * 86_400)),
            retention_interval: Duration::from_secs(86_400),
            http_threads: 32,
            max_body_bytes: 32 * 1024 * 1024,
            max_waiters: 4096,
            status_poll: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            demo_printer: true,
            log_level: log::LevelFilter::Info,
            max_queued_per_printer: 20_000,
            max_queued_per_key: 10_000,
            preview_concurrency: 2,
            preview_per_key: 1,
            auto_add_usb: false,
            sysfs_root: PathBuf::from("/"),
            access_log: true,
            dir_roots: Vec::new(),
            printer_networks: Vec::new(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, Vec<String>> {
        Config::from_vars(&env_vars())
    }

    /// Reads configuration from a map of variables (tests pass their own).
    /// Returns one message per bad variable.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Config, Vec<String>> {
        let mut cfg = Config::default();
        let mut r = VarReader::new(vars);

        if let Some(v) = r.get("PRINTER_HUB_DATA_DIR") {
            cfg.data_dir = PathBuf::from(v);
        }
        if let Some(v) = r.get("PRINTER_HUB_LISTEN") {
            if v.parse::<std::net::SocketAddr>().is_err() && !v.contains(':') {
                r.error(format!("PRINTER_HUB_LISTEN={v}: expected HOST:PORT"));
            }
            cfg.listen = v.to_string();
        }
        if let Some(days) = r.num("PRINTER_HUB_JOB_RETENTION_DAYS", 0, 36_500) {
            cfg.retention = (days > 0).then(|| Duration::from_secs(days * 86_400));
        }
        if let Some(days) = r.num("PRINTER_HUB_AUDIT_RETENTION_DAYS", 0, 36_500) {
            cfg.audit_retention = (days > 0).then(|| Duration::from_secs(days * 86_400));
        }
        if let Some(s) = r.num("PRINTER_HUB_RETENTION_INTERVAL_S", 1, 365 * 86_400) {
            cfg.retention_interval = Duration::from_secs(s);
        }
        if let Some(n) = r.num("PRINTER_HUB_HTTP_THREADS", 1, 256) {
            cfg.http_threads = n as usize;
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_BODY_BYTES", 1024, 1 << 30) {
            cfg.max_body_bytes = n as usize;
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_WAITERS", 0, 1_000_000) {
            cfg.max_waiters = n as usize;
        }
        if let Some(s) = r.num("PRINTER_HUB_STATUS_POLL_S", 1, 3600) {
            cfg.status_poll = Duration::from_secs(s);
        }
        if let Some(s) = r.num("PRINTER_HUB_SHUTDOWN_TIMEOUT_S", 1, 600) {
            cfg.shutdown_timeout = Duration::from_secs(s);
        }
        if let Some(v) = r.get("PRINTER_HUB_DEMO_PRINTER") {
            match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => cfg.demo_printer = true,
                "0" | "false" | "no" | "off" => cfg.demo_printer = false,
                _ => r.error(format!(
                    "PRINTER_HUB_DEMO_PRINTER={v}: expected true or false"
                )),
            }
        }
        if let Some(v) = r.get("PRINTER_HUB_ACCESS_LOG") {
            match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => cfg.access_log = true,
                "0" | "false" | "no" | "off" => cfg.access_log = false,
                _ => r.error(format!(
                    "PRINTER_HUB_ACCESS_LOG={v}: expected true or false"
                )),
            }
        }
        if let Some(v) = r.get("PRINTER_HUB_LOG_LEVEL") {
            match v.parse::<log::LevelFilter>() {
                Ok(level) => cfg.log_level = level,
                Err(_) => r.error(format!(
                    "PRINTER_HUB_LOG_LEVEL={v}: expected error, warn, info, debug or trace"
                )),
            }
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_QUEUED_PER_PRINTER", 1, 10_000_000) {
            cfg.max_queued_per_printer = n;
        }
        if let Some(n) = r.num("PRINTER_HUB_MAX_QUEUED_PER_KEY", 1, 10_000_000) {
            cfg.max_queued_per_key = n;
        }
        if let Some(n) = r.num("PRINTER_HUB_PREVIEW_CONCURRENCY", 1, 256) {
            cfg.preview_concurrency = n as usize;
        }
        if let Some(n) = r.num("PRINTER_HUB_PREVIEW_PER_KEY", 1, 256) {
            cfg.preview_per_key = n as usize;
        }
        if let Some(v) = r.get("PRINTER_HUB_AUTO_ADD_USB") {
            match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => cfg.auto_add_usb = true,
                "0" | "false" | "no" | "off" => cfg.auto_add_usb = false,
                _ => r.error(format!(
                    "PRINTER_HUB_AUTO_ADD_USB={v}: expected true or false"
                )),
            }
        }
        if let Some(v) = r.get("PRINTER_HUB_SYSFS_ROOT") {
            cfg.sysfs_root = PathBuf::from(v);
        }
        if let Some(v) = r.get("PRINTER_HUB_DIR_ROOTS") {
            for root in v.split(':').map(str::trim).filter(|s| !s.is_empty()) {
                if root.starts_with('/') {
                    cfg.dir_roots.push(PathBuf::from(root));
                } else {
                    r.error(format!(
                        "PRINTER_HUB_DIR_ROOTS: `{root}` is not an absolute path"
                    ));
                }
            }
        }
        if let Some(v) = r.get("PRINTER_HUB_PRINTER_NETWORKS") {
            for net in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match Network::parse(net) {
                    Ok(n) => cfg.printer_networks.push(n),
                    Err(e) => r.error(format!("PRINTER_HUB_PRINTER_NETWORKS: {e}")),
                }
            }
        }
        r.finish(cfg)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("labelhub.db")
    }

    /// Where printer connections may point: `dir://` under the data
    /// directory or a `PRINTER_HUB_DIR_ROOTS` root, `tcp://` inside
    /// `PRINTER_HUB_PRINTER_NETWORKS` (when set).
    pub fn reach(&self) -> Reach {
        let mut dir_roots = vec![self.data_dir.clone()];
        dir_roots.extend(self.dir_roots.iter().cloned());
        Reach {
            dir_roots,
            networks: self.printer_networks.clone(),
        }
    }
}

/// The `PRINTER_HUB_*` variables of the process environment.
pub(crate) fn env_vars() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("PRINTER_HUB_"))
        .collect()
}

/// Reads settings from a map of variables and collects one message per bad
/// one, so a configuration reports every mistake at once. Shared by this
/// module and `auth::config`; each only declares its variables.
pub(crate) struct VarReader<'a> {
    vars: &'a BTreeMap<String, String>,
    errors: Vec<String>,
}

impl<'a> VarReader<'a> {
    pub(crate) fn new(vars: &'a BTreeMap<String, String>) -> VarReader<'a> {
        VarReader {
            vars,
            errors: Vec::new(),
        }
    }

    /// The trimmed value of `name`; `None` when unset or blank.
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A whole number from `min` to `max`; anything else is recorded as an
    /// error and gives `None`, as does an unset variable.
    pub(crate) fn num(&mut self, name: &str, min: u64, max: u64) -> Option<u64> {
        let v = self.get(name)?;
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(format!(
                    "{name}={v}: expected a whole number from {min} to {max}"
                ));
                None
            }
        }
    }

    /// Records one bad variable.
    pub(crate) fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    /// `cfg` if nothing was wrong, else every message in order.
    pub(crate) fn finish<T>(self, cfg: T) -> Result<T, Vec<String>> {
        if self.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(self.errors)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A variable map from pairs (also used by `auth::config`'s tests).
    pub(crate) fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let cfg = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(cfg.listen, "0.0.0.0:8090");
        assert_eq!(cfg.data_dir, PathBuf::from("./data"));
        assert_eq!(cfg.retention, Some(Duration::from_secs(30 * 86_400)));
    }

    #[test]
    fn zero_days_disables_retention_and_bad_values_are_all_reported() {
        let cfg = Config::from_vars(&vars(&[("PRINTER_HUB_JOB_RETENTION_DAYS", "0")])).unwrap();
        assert_eq!(cfg.retention, None);
        let errs = Config::from_vars(&vars(&[
            ("PRINTER_HUB_JOB_RETENTION_DAYS", "-1"),
            ("PRINTER_HUB_HTTP_THREADS", "many"),
            ("PRINTER_HUB_LOG_LEVEL", "loud"),
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn dir_roots_and_printer_networks() {
        let cfg = Config::from_vars(&vars(&[
            ("PRINTER_HUB_DATA_DIR", "/var/lib/labelhub"),
            ("PRINTER_HUB_DIR_ROOTS", "/srv/labels:/mnt/out"),
            ("PRINTER_HUB_PRINTER_NETWORKS", "192.168.1.0/24, fd00::/8"),
        ]))
        .unwrap();
        let reach = cfg.reach();
        assert_eq!(
            reach.dir_roots,
            ["/var/lib/labelhub", "/srv/labels", "/mnt/out"].map(PathBuf::from)
        );
        assert_eq!(reach.networks.len(), 2);
        let errs = Config::from_vars(&vars(&[
            ("PRINTER_HUB_DIR_ROOTS", "relative/dir"),
            ("PRINTER_HUB_PRINTER_NETWORKS", "10.0.0.0/33,nonsense"),
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
