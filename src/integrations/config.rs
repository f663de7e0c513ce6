//! Integration settings, read once from `PRINTER_HUB_*` variables next to
//! the hub's (`hub::config`) and auth's. Upstream's names are kept for the
//! lookups and the webhook secret (`../shared/reference/upstream-hub.md` §2).
//! [`IntegrationsConfig::from_vars`] reports every bad variable at once.

use std::collections::BTreeMap;
use std::time::Duration;

use super::policy::Networks;
use crate::hub::config::{env_vars, VarReader};

/// Every variable, its default and what it means (README table).
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "PRINTER_HUB_SNIPEIT_URL",
        "(empty: off)",
        "Snipe-IT base URL, e.g. https://snipeit.example.com",
    ),
    (
        "PRINTER_HUB_SNIPEIT_API_KEY",
        "(empty)",
        "Snipe-IT personal access token (sent as Bearer)",
    ),
    (
        "PRINTER_HUB_SNIPEIT_TIMEOUT",
        "5.0",
        "seconds for one Snipe-IT request (connect + answer)",
    ),
    (
        "PRINTER_HUB_GROCY_URL",
        "(empty: off)",
        "Grocy base URL, e.g. http://grocy.lan",
    ),
    (
        "PRINTER_HUB_GROCY_API_KEY",
        "(empty)",
        "Grocy API key (sent as GROCY-API-KEY)",
    ),
    (
        "PRINTER_HUB_GROCY_TIMEOUT",
        "5.0",
        "seconds for one Grocy request",
    ),
    (
        "PRINTER_HUB_SPOOLMAN_URL",
        "(empty: off)",
        "Spoolman base URL, e.g. http://spoolman.lan:7912",
    ),
    (
        "PRINTER_HUB_SPOOLMAN_TIMEOUT",
        "5.0",
        "seconds for one Spoolman request",
    ),
    (
        "PRINTER_HUB_LOOKUP_CACHE_S",
        "30",
        "how long a lookup answer (found or not found) is reused; 0 = no cache",
    ),
    (
        "PRINTER_HUB_WEBHOOK_API_KEY",
        "(empty: inbound webhooks answer 503)",
        "secret inbound webhooks send in X-API-Key; at least 32 characters",
    ),
    (
        "PRINTER_HUB_SPOOLMAN_PRINTER",
        "(default printer)",
        "slug of the printer Spoolman webhooks print on",
    ),
    (
        "PRINTER_HUB_GROCY_PRINTER",
        "(default printer)",
        "slug of the printer Grocy webhooks print on",
    ),
    (
        "PRINTER_HUB_WEBHOOK_RETRY_BASE_MS",
        "5000",
        "first retry delay of an outbound webhook; doubles per attempt",
    ),
    (
        "PRINTER_HUB_WEBHOOK_RETRY_MAX_MS",
        "7200000",
        "longest delay between two attempts",
    ),
    (
        "PRINTER_HUB_WEBHOOK_GIVE_UP_S",
        "86400",
        "retries stop this long after the event (or a manual redeliver)",
    ),
    (
        "PRINTER_HUB_WEBHOOK_TIMEOUT_S",
        "10",
        "seconds for one outbound delivery",
    ),
];

/// Shortest accepted inbound webhook secret (upstream's rule).
pub const MIN_WEBHOOK_KEY_LEN: usize = 32;

/// One app's connection settings.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Base URL without a trailing slash.
    pub url: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

/// The integrations' configuration.
#[derive(Debug, Clone)]
pub struct IntegrationsConfig {
    pub snipeit: Option<AppConfig>,
    pub grocy: Option<AppConfig>,
    pub spoolman: Option<AppConfig>,
    pub cache_ttl: Duration,
    pub webhook_key: Option<String>,
    pub spoolman_printer: Option<String>,
    pub grocy_printer: Option<String>,
    /// `PRINTER_HUB_PRINTER_NETWORKS`, read by `hub::config` (one list for
    /// printers and webhook subscribers); set by `cli::serve`.
    pub networks: Networks,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub give_up: Duration,
    pub delivery_timeout: Duration,
}

impl Default for IntegrationsConfig {
    fn default() -> IntegrationsConfig {
        IntegrationsConfig {
            snipeit: None,
            grocy: None,
            spoolman: None,
            cache_ttl: Duration::from_secs(30),
            webhook_key: None,
            spoolman_printer: None,
            grocy_printer: None,
            networks: Networks::any(),
            retry_base: Duration::from_millis(5000),
            retry_max: Duration::from_millis(7_200_000),
            give_up: Duration::from_secs(86_400),
            delivery_timeout: Duration::from_secs(10),
        }
    }
}

impl IntegrationsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<IntegrationsConfig, Vec<String>> {
        IntegrationsConfig::from_vars(&env_vars())
    }

    /// Reads a map of variables; one message per bad variable.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<IntegrationsConfig, Vec<String>> {
        let mut cfg = IntegrationsConfig::default();
        let mut r = VarReader::new(vars);
        cfg.snipeit = app(&mut r, "SNIPEIT", true);
        cfg.grocy = app(&mut r, "GROCY", true);
        cfg.spoolman = app(&mut r, "SPOOLMAN", false);
        if let Some(s) = r.num("PRINTER_HUB_LOOKUP_CACHE_S", 0, 86_400) {
            cfg.cache_ttl = Duration::from_secs(s);
        }
        if let Some(key) = r.get("PRINTER_HUB_WEBHOOK_API_KEY") {
            if key.chars().count() < MIN_WEBHOOK_KEY_LEN {
                r.error(format!(
                    "PRINTER_HUB_WEBHOOK_API_KEY: at least {MIN_WEBHOOK_KEY_LEN} characters (got {})",
                    key.chars().count()
                ));
            }
            cfg.webhook_key = Some(key.to_string());
        }
        for (name, slot) in [
            ("PRINTER_HUB_SPOOLMAN_PRINTER", &mut cfg.spoolman_printer),
            ("PRINTER_HUB_GROCY_PRINTER", &mut cfg.grocy_printer),
        ] {
            *slot = r.get(name).map(str::to_string);
        }
        if let Some(ms) = r.num("PRINTER_HUB_WEBHOOK_RETRY_BASE_MS", 1, 86_400_000) {
            cfg.retry_base = Duration::from_millis(ms);
        }
        if let Some(ms) = r.num("PRINTER_HUB_WEBHOOK_RETRY_MAX_MS", 1, 86_400_000) {
            cfg.retry_max = Duration::from_millis(ms);
        }
        if let Some(s) = r.num("PRINTER_HUB_WEBHOOK_GIVE_UP_S", 1, 30 * 86_400) {
            cfg.give_up = Duration::from_secs(s);
        }
        if let Some(s) = r.num("PRINTER_HUB_WEBHOOK_TIMEOUT_S", 1, 300) {
            cfg.delivery_timeout = Duration::from_secs(s);
        }
        r.finish(cfg)
    }
}

fn app(r: &mut VarReader<'_>, name: &str, has_key: bool) -> Option<AppConfig> {
    let url_var = format!("PRINTER_HUB_{name}_URL");
    let timeout_var = format!("PRINTER_HUB_{name}_TIMEOUT");
    let mut timeout = Duration::from_secs(5);
    if let Some(v) = r.get(&timeout_var) {
        match v.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s <= 120.0 => {
                timeout = Duration::from_secs_f64(s);
            }
            _ => r.error(format!(
                "{timeout_var}={v}: expected seconds, more than 0 and at most 120"
            )),
        }
    }
    let url = r.get(&url_var)?;
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() > 2048 {
        r.error(format!(
            "{url_var}={url}: expected an http:// or https:// URL"
        ));
        return None;
    }
    let api_key = if has_key {
        r.get(&format!("PRINTER_HUB_{name}_API_KEY"))
            .map(str::to_string)
    } else {
        None
    };
    Some(AppConfig {
        url: url.trim_end_matches('/').to_string(),
        api_key,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::config::tests::vars;

    #[test]
    fn defaults_and_every_bad_value_reported() {
        let cfg = IntegrationsConfig::from_vars(&vars(&[])).unwrap();
        assert!(cfg.snipeit.is_none() && cfg.webhook_key.is_none());
        let cfg = IntegrationsConfig::from_vars(&vars(&[
            ("PRINTER_HUB_GROCY_URL", "http://grocy.lan/"),
            ("PRINTER_HUB_GROCY_API_KEY", "k"),
            ("PRINTER_HUB_GROCY_TIMEOUT", "2.5"),
        ]))
        .unwrap();
        let g = cfg.grocy.unwrap();
        assert_eq!(g.url, "http://grocy.lan");
        assert_eq!(g.api_key.as_deref(), Some("k"));
        assert_eq!(g.timeout, Duration::from_millis(2500));
        let errs = IntegrationsConfig::from_vars(&vars(&[
            ("PRINTER_HUB_SNIPEIT_URL", "ftp://x"),
            ("PRINTER_HUB_SPOOLMAN_TIMEOUT", "0"),
            ("PRINTER_HUB_WEBHOOK_API_KEY", "short"),
            ("PRINTER_HUB_WEBHOOK_RETRY_BASE_MS", "0"),
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
    }
}
