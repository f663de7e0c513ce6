//! Lookups: an entity id in Snipe-IT, Grocy or Spoolman -> label data.
//!
//! The mapping is upstream's (`../shared/reference/upstream-hub.md` §10.6):
//! - Snipe-IT `GET {url}/api/v1/hardware/bytag/{tag}` (Bearer) -> title =
//!   name or tag, primary_id = asset_tag, qr = `{url}/hardware/{id}`,
//!   secondary = [`S/N: <serial>`]. Locations (`/loc/{id}` QR pages):
//!   `GET {url}/api/v1/locations/{id}` -> qr = `{url}/locations/{id}`.
//!   Snipe-IT answers a missing asset with HTTP 200 and
//!   `{"status": "error", "messages": ...}` (older versions) or 404.
//! - Grocy `GET {url}/api/objects/products/{id}` (`GROCY-API-KEY`; 400 or
//!   404 = not found) -> title = name, primary_id = id, qr =
//!   `{url}/product/{id}`.
//! - Spoolman `GET {url}/api/v1/spool/{id}` -> title = `<vendor> <filament
//!   name>`, primary_id = `#<id>`, qr = `{url}/spool/show/{id}`, secondary =
//!   [`<grams rounded half up>g remaining`].
//!
//! Answers (found and not found) are cached for `PRINTER_HUB_LOOKUP_CACHE_S`
//! in a bounded map; failures are never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client;
use super::config::{AppConfig, IntegrationsConfig};
use super::IntegrationError;

/// Most cached answers; the cache is emptied when full.
const CACHE_MAX: usize = 1024;
/// Longest entity id accepted.
pub const MAX_ID_CHARS: usize = 128;

/// The three apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum App {
    SnipeIt,
    Grocy,
    Spoolman,
}

impl App {
    pub fn parse(s: &str) -> Result<App, IntegrationError> {
        match s {
            "snipeit" => Ok(App::SnipeIt),
            "grocy" => Ok(App::Grocy),
            "spoolman" => Ok(App::Spoolman),
            other => Err(IntegrationError::UnknownApp(
                other.chars().take(64).collect(),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            App::SnipeIt => "snipeit",
            App::Grocy => "grocy",
            App::Spoolman => "spoolman",
        }
    }
}

/// What is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Snipe-IT hardware by asset tag.
    Asset,
    /// Snipe-IT location by id.
    Location,
    /// Grocy product by id.
    Product,
    /// Spoolman spool by id.
    Spool,
}

impl Kind {
    pub fn app(self) -> App {
        match self {
            Kind::Asset | Kind::Location => App::SnipeIt,
            Kind::Product => App::Grocy,
            Kind::Spool => App::Spoolman,
        }
    }

    /// The kind `GET /api/lookup/{app}/...` and `lookup: {app}` mean.
    pub fn of_app(app: App) -> Kind {
        match app {
            App::SnipeIt => Kind::Asset,
            App::Grocy => Kind::Product,
            App::Spoolman => Kind::Spool,
        }
    }
}

/// A resolved entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub app: App,
    /// The id as the caller gave it.
    pub id: String,
    pub name: Option<String>,
    /// Deep link into the app (the QR payload).
    pub url: Option<String>,
    pub primary_id: String,
    pub secondary: Vec<String>,
}

impl Entity {
    /// Upstream `LookupResult`.
    pub fn view(&self) -> Value {
        let mut extra = serde_json::Map::new();
        if !self.secondary.is_empty() {
            extra.insert("secondary".into(), json!(self.secondary));
        }
        extra.insert("primary_id".into(), json!(self.primary_id));
        json!({
            "app": self.app.name(),
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "extra": extra,
        })
    }

    /// Label data (upstream `RawLabelData` field names).
    pub fn label_data(&self) -> Value {
        let mut data = json!({
            "source_app": self.app.name(),
            "title": self.name.clone().unwrap_or_else(|| self.primary_id.clone()),
            "primary_id": self.primary_id,
            "secondary": self.secondary,
        });
        if let Some(url) = &self.url {
            data["qr_payload"] = json!(url);
        }
        data
    }
}

type Cached = Result<Entity, (App, String)>;

/// The lookup service with its cache.
pub struct Lookups {
    snipeit: Option<AppConfig>,
    grocy: Option<AppConfig>,
    spoolman: Option<AppConfig>,
    ttl: Duration,
    cache: Mutex<HashMap<(Kind, String), (Instant, Cached)>>,
}

impl Lookups {
    pub fn new(cfg: &IntegrationsConfig) -> Lookups {
        Lookups {
            snipeit: cfg.snipeit.clone(),
            grocy: cfg.grocy.clone(),
            spoolman: cfg.spoolman.clone(),
            ttl: cfg.cache_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The app's settings, when configured.
    pub fn app_config(&self, app: App) -> Option<&AppConfig> {
        match app {
            App::SnipeIt => self.snipeit.as_ref(),
            App::Grocy => self.grocy.as_ref(),
            App::Spoolman => self.spoolman.as_ref(),
        }
    }

    /// Looks `id` up (cached).
    pub fn lookup(&self, kind: Kind, id: &str) -> Result<Entity, IntegrationError> {
        let app = kind.app();
        let cfg = self
            .app_config(app)
            .ok_or(IntegrationError::NotConfigured { app: app.name() })?;
        check_id(kind, id)?;
        let key = (kind, id.to_string());
        if !self.ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, answer)) = cache.get(&key) {
                if at.elapsed() < self.ttl {
                    return answer
                        .clone()
                        .map_err(|(app, id)| IntegrationError::NotFound {
                            app: app.name(),
                            id,
                        });
                }
            }
        }
        // The request runs without the cache lock held.
        let answer = fetch(kind, cfg, id);
        let cached: Option<Cached> = match &answer {
            Ok(e) => Some(Ok(e.clone())),
            Err(IntegrationError::NotFound { .. }) => Some(Err((app, id.to_string()))),
            Err(_) => None,
        };
        if let (Some(c), false) = (cached, self.ttl.is_zero()) {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), c));
        }
        answer
    }
}

/// Ids are bounded; numeric apps take digits only (anything else cannot
/// exist there and is answered as not found without asking).
fn check_id(kind: Kind, id: &str) -> Result<(), IntegrationError> {
    let app = kind.app().name();
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS || id.chars().any(char::is_control) {
        return Err(IntegrationError::invalid(
            "entity_id",
            format!("1 to {MAX_ID_CHARS} printable characters"),
        ));
    }
    let numeric = !matches!(kind, Kind::Asset);
    if numeric && (!id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 18) {
        return Err(IntegrationError::NotFound {
            app,
            id: id.to_string(),
        });
    }
    Ok(())
}

/// Percent-encodes one path segment.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn fetch(kind: Kind, cfg: &AppConfig, id: &str) -> Result<Entity, IntegrationError> {
    let app = kind.app();
    let fail = |cause: String| IntegrationError::LookupFailed {
        app: app.name(),
        cause,
    };
    let not_found = || IntegrationError::NotFound {
        app: app.name(),
        id: id.to_string(),
    };
    let (path, auth): (String, Option<(&str, String)>) = match kind {
        Kind::Asset => (
            format!("/api/v1/hardware/bytag/{}", segment(id)),
            cfg.api_key
                .as_ref()
                .map(|k| ("Authorization", format!("Bearer {k}"))),
        ),
        Kind::Location => (
            format!("/api/v1/locations/{id}"),
            cfg.api_key
                .as_ref()
                .map(|k| ("Authorization", format!("Bearer {k}"))),
        ),
        Kind::Product => (
            format!("/api/objects/products/{id}"),
            cfg.api_key.as_ref().map(|k| ("GROCY-API-KEY", k.clone())),
        ),
        Kind::Spool => (format!("/api/v1/spool/{id}"), None),
    };
    let url = format!("{}{path}", cfg.url);
    let mut headers: Vec<(&str, &str)> = vec![("Accept", "application/json")];
    if let Some((k, v)) = &auth {
        headers.push((k, v.as_str()));
    }
    let answer = client::request("GET", &url, &headers, None, cfg.timeout, None).map_err(&fail)?;
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    match answer.status {
        200 => {}
        404 => return Err(not_found()),
        400 if kind == Kind::Product => return Err(not_found()),
        401 | 403 => {
            return Err(fail(format!(
                "HTTP {}: the app refused the API key",
                answer.status
            )))
        }
        s => return Err(fail(format!("HTTP {s}"))),
    }
    let Some(Value::Object(obj)) = body else {
        return Err(fail("the answer is not a JSON object".into()));
    };
    // The app's own ids go into URLs (and a redirect's Location): digits
    // only, whatever the app answered.
    let num = |v: Option<&Value>| -> Result<String, IntegrationError> {
        let s = match v {
            Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => return Err(fail("the answer has no numeric `id`".into())),
        };
        if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("the answer's `id` is not a number".into()));
        }
        Ok(s)
    };
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.trim().is_empty() => Some(unescape(s.trim())),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    match kind {
        Kind::Asset | Kind::Location => {
            if obj.get("status").and_then(Value::as_str) == Some("error") {
                return Err(not_found());
            }
            let num_id = num(obj.get("id"))?;
            if kind == Kind::Location {
                let name = text(obj.get("name"));
                return Ok(Entity {
                    app,
                    id: id.to_string(),
                    primary_id: name.clone().unwrap_or_else(|| id.to_string()),
                    name,
                    url: Some(format!("{}/locations/{num_id}", cfg.url)),
                    secondary: Vec::new(),
                });
            }
            let tag = text(obj.get("asset_tag")).unwrap_or_else(|| id.to_string());
            let mut secondary = Vec::new();
            if let Some(serial) = text(obj.get("serial")) {
                secondary.push(format!("S/N: {serial}"));
            }
            Ok(Entity {
                app,
                id: id.to_string(),
                name: Some(text(obj.get("name")).unwrap_or_else(|| tag.clone())),
                url: Some(format!("{}/hardware/{num_id}", cfg.url)),
                primary_id: tag,
                secondary,
            })
        }
        Kind::Product => {
            let name =
                text(obj.get("name")).ok_or_else(|| fail("the answer has no `name`".into()))?;
            let pid = num(obj.get("id"))?;
            Ok(Entity {
                app,
                id: id.to_string(),
                name: Some(name),
                url: Some(format!("{}/product/{pid}", cfg.url)),
                primary_id: pid,
                secondary: Vec::new(),
            })
        }
        Kind::Spool => {
            let sid = num(obj.get("id"))?;
            let filament = obj.get("filament");
            let vendor = filament.and_then(|f| text(f.get("vendor").and_then(|v| v.get("name"))));
            let fname = filament.and_then(|f| text(f.get("name")));
            let title = [vendor, fname]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let mut secondary = Vec::new();
            if let Some(grams) = obj.get("remaining_weight").and_then(Value::as_f64) {
                if grams.is_finite() {
                    secondary.push(format!("{}g remaining", (grams + 0.5).floor() as i64));
                }
            }
            Ok(Entity {
                app,
                id: id.to_string(),
                name: Some(if title.is_empty() {
                    format!("Spool {sid}")
                } else {
                    title
                }),
                url: Some(format!("{}/spool/show/{sid}", cfg.url)),
                primary_id: format!("#{sid}"),
                secondary,
            })
        }
    }
}

/// Snipe-IT HTML-escapes text in its API answers; undo the common entities.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_asking() {
        assert!(matches!(
            check_id(Kind::Spool, "12a"),
            Err(IntegrationError::NotFound { .. })
        ));
        assert!(check_id(Kind::Asset, "A-12/3").is_ok());
        assert!(check_id(Kind::Asset, &"x".repeat(129)).is_err());
        assert!(check_id(Kind::Asset, "a\nb").is_err());
        assert_eq!(segment("A 1/ä"), "A%201%2F%C3%A4");
        assert_eq!(unescape("Tom &amp; Jerry&#039;s"), "Tom & Jerry's");
    }

    #[test]
    fn label_data_has_upstream_fields() {
        let e = Entity {
            app: App::Spoolman,
            id: "7".into(),
            name: Some("Prusa PLA".into()),
            url: Some("http://s/spool/show/7".into()),
            primary_id: "#7".into(),
            secondary: vec!["850g remaining".into()],
        };
        let d = e.label_data();
        assert_eq!(d["title"], "Prusa PLA");
        assert_eq!(d["qr_payload"], "http://s/spool/show/7");
        assert_eq!(e.view()["extra"]["secondary"][0], "850g remaining");
    }
}
