//! Admin printer routes (`/api/v1/admin/printers`): create, change,
//! disable and enable printers. Every change is committed with an audit row
//! and applied to the printer threads at once (no restart).

use serde::Deserialize;
use serde_json::Value;

use super::{body, json, origin, shapes, Api, ApiError};
use crate::brother::{media, model};
use crate::http::{Reply, Request};
use crate::hub::printers::{self, NewPrinter, PrinterUpdate};
use crate::hub::{control, HubError};

/// `connection`: our `uri`, or upstream's `{host, port, snmp}` (TCP).
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Connection {
    pub uri: Option<String>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub snmp: Option<Snmp>,
}

/// Upstream `SNMPConfig`: `discover` = poll the printer's status over SNMP
/// (`false` is our `snmp_port=off`), `community` (a secret, default
/// `public`). Only for TCP printers.
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Snmp {
    pub discover: bool,
    pub community: Option<String>,
}

/// Longest SNMP community (upstream's limit).
const MAX_COMMUNITY: usize = 64;

fn check_community(c: &str) -> Result<(), ApiError> {
    let ok = (1..=MAX_COMMUNITY).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'&' | b'?' | b'#' | b'=' | b'%'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "connection.snmp.community",
            format!("1 to {MAX_COMMUNITY} printable characters without & ? # = %"),
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    #[serde(default = "thirty")]
    pub timeout_s: i64,
}

fn thirty() -> i64 {
    30
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CutDefaults {
    pub half_cut: Option<bool>,
    pub auto_cut: Option<bool>,
}

/// Upstream `PrinterCreatePayload` plus `media` and `auto_resume`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePrinter {
    pub name: String,
    pub slug: String,
    pub model: String,
    #[serde(default)]
    pub backend: Option<String>,
    pub connection: Connection,
    #[serde(default)]
    pub media: Option<String>,
    #[serde(default)]
    pub queue: Option<QueueSettings>,
    #[serde(default)]
    pub cut_defaults: Option<CutDefaults>,
    #[serde(default)]
    pub auto_resume: Option<bool>,
    /// Longest label accepted, mm; default 500.
    #[serde(default)]
    pub max_length_mm: Option<i64>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Upstream `PrinterUpdatePayload` plus `media` and `auto_resume`. Slug
/// and model cannot change (jobs are rendered for the model).
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct UpdatePrinter {
    pub name: Option<String>,
    pub connection: Option<Connection>,
    pub media: Option<Option<String>>,
    pub queue: Option<QueueSettings>,
    pub cut_defaults: Option<CutDefaults>,
    pub auto_resume: Option<bool>,
    pub max_length_mm: Option<i64>,
    pub enabled: Option<bool>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    HubError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
    .into()
}

fn check_slug(slug: &str) -> Result<(), ApiError> {
    let ok = (3..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "slug",
            "3 to 64 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ))
    }
}

/// The same character rules as key names.
fn check_name(name: &str) -> Result<(), ApiError> {
    if name.len() > 255 {
        return Err(invalid("name", "1 to 255 characters"));
    }
    crate::auth::admin::display_name(name, 255)
        .map(|_| ())
        .map_err(|message| invalid("name", message))
}

/// The URI (without the community) and the community of a connection,
/// validated: its syntax by the devices, where it may point by the
/// configuration's [`Reach`](crate::brother::transport::Reach).
pub(crate) fn uri_of(api: &Api, conn: &Connection) -> Result<(String, Option<String>), ApiError> {
    let (uri, mut community) = match (&conn.uri, &conn.host) {
        (Some(uri), None) => {
            let (uri, community) = split_community(uri.trim());
            (uri, community)
        }
        (None, Some(host)) => {
            let port = conn.port.unwrap_or(9100);
            if host.is_empty() || host.len() > 253 || !(1..=65535).contains(&port) {
                return Err(invalid(
                    "connection",
                    "host 1..253 characters, port 1..65535",
                ));
            }
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            let off = conn.snmp.as_ref().is_some_and(|s| !s.discover);
            let uri = if off {
                format!("tcp://{host}:{port}?snmp_port=off")
            } else {
                format!("tcp://{host}:{port}")
            };
            (uri, None)
        }
        _ => {
            return Err(invalid(
                "connection",
                "give either `uri` or `host` (and `port`)",
            ))
        }
    };
    if let Some(snmp) = &conn.snmp {
        if conn.uri.is_some() {
            return Err(invalid(
                "connection.snmp",
                "with `uri`, give the community as `community=` in the URI",
            ));
        }
        community = snmp.community.clone();
    }
    if let Some(c) = &community {
        check_community(c)?;
        if !uri.starts_with("tcp://") {
            return Err(invalid(
                "connection.snmp",
                "an SNMP community is only for tcp:// printers",
            ));
        }
    }
    let shown = crate::brother::transport::redact_uri(&uri);
    api.hub
        .devices
        .validate_uri(&uri)
        .map_err(|e| invalid("connection.uri", format!("{shown}: {}", e.message)))?;
    if let Ok(endpoint) = crate::brother::transport::parse_uri(&uri) {
        crate::brother::transport::check_reach(&uri, &endpoint, &api.hub.config.reach())
            .map_err(|e| invalid("connection.uri", e.to_string()))?;
    }
    Ok((uri, community))
}

/// Takes `community=` out of a URI's query: (URI without it, community).
fn split_community(uri: &str) -> (String, Option<String>) {
    let Some((base, query)) = uri.split_once('?') else {
        return (uri.to_string(), None);
    };
    let mut community = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("community=") {
            Some(c) => {
                community = Some(c.to_string());
                false
            }
            None => true,
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), community)
    } else {
        (format!("{base}?{}", rest.join("&")), community)
    }
}

fn check_media(model: &'static model::Model, m: &str) -> Result<String, ApiError> {
    media::geometry(model, m)
        .map(|g| g.media.id.to_string())
        .map_err(|e| invalid("media", e.to_string()))
}

/// `media=` of an `emulator:` URI.
fn uri_media(uri: &str) -> Option<String> {
    let query = uri.strip_prefix("emulator:")?.trim_start_matches('?');
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("media=").map(str::to_string))
}

/// `max_length_mm`: 1 mm up to what the model can print.
fn check_max_length(
    m: Option<&'static model::Model>,
    v: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let top = m.map_or(i64::MAX, printers::model_max_length_mm);
    if !(1..=top).contains(&v) {
        return Err(invalid(
            "max_length_mm",
            format!("1 to {top} (the longest label the model prints), got {v}"),
        ));
    }
    Ok(Some(v))
}

fn check_timeout(q: &Option<QueueSettings>) -> Result<Option<i64>, ApiError> {
    match q {
        Some(q) if !(1..=600).contains(&q.timeout_s) => Err(invalid("queue.timeout_s", "1 to 600")),
        Some(q) => Ok(Some(q.timeout_s)),
        None => Ok(None),
    }
}

/// `GET /api/v1/admin/printers?include_disabled=`
pub fn list(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let include = matches!(req.query("include_disabled"), Some("true" | "1"));
    let all = printers::list(&api.hub.db.read(), include)?;
    json(
        200,
        &Value::Array(
            all.iter()
                .filter(|p| crate::auth::access::may_use_printer(req, &p.id))
                .map(shapes::admin_printer)
                .collect(),
        ),
    )
}

/// `GET /api/v1/admin/printers/{slug}`
pub fn get(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let p = printers::get(&api.hub.db.read(), req.param("slug"))?;
    json(200, &shapes::admin_printer(&p))
}

fn by(req: &Request) -> String {
    let o = origin(req);
    // The audit actor is the principal (`api-key:<id>`, `sso:<user>`);
    // `created_by` became the bare key id for upstream's batches.
    let actor = req
        .principal
        .as_ref()
        .map(|p| p.actor())
        .unwrap_or_else(|| "anonymous".into());
    format!("{actor}:{}", o.source_ip.unwrap_or_default())
}

/// `POST /api/v1/admin/printers` -> 201; the printer's thread starts now.
pub fn create(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: CreatePrinter = body(req)?;
    check_name(&r.name)?;
    check_slug(&r.slug)?;
    let m = model::by_name(&r.model)
        .ok_or_else(|| invalid("model", format!("unknown model `{}`", r.model)))?;
    if let Some(backend) = &r.backend {
        if backend != shapes::backend(m.name) {
            return Err(invalid(
                "backend",
                format!("{} uses the `{}` backend", m.name, shapes::backend(m.name)),
            ));
        }
    }
    let (uri, snmp_community) = uri_of(api, &r.connection)?;
    let media = match r.media.clone().or_else(|| uri_media(&uri)) {
        Some(x) => Some(check_media(m, &x)?),
        None => None,
    };
    let cut = r.cut_defaults.as_ref();
    let new = NewPrinter {
        slug: r.slug.clone(),
        name: r.name.trim().to_string(),
        model: m.name.to_string(),
        uri,
        snmp_community,
        media,
        half_cut: cut.and_then(|c| c.half_cut).unwrap_or(false),
        auto_cut: cut.and_then(|c| c.auto_cut).unwrap_or(true),
        auto_resume: r.auto_resume.unwrap_or(true),
        queue_timeout_s: check_timeout(&r.queue)?.unwrap_or(30),
        max_length_mm: check_max_length(Some(m), r.max_length_mm)?
            .unwrap_or(printers::DEFAULT_MAX_LENGTH_MM.min(printers::model_max_length_mm(m))),
        enabled: r.enabled,
    };
    let who = by(req);
    let printer = api.hub.write(|w| printers::create(w, &new, &who))?;
    control::apply_printer(&api.hub, &printer)?;
    json(201, &shapes::admin_printer(&printer))
}

/// `PUT /api/v1/admin/printers/{slug}`; the thread restarts (or stops).
pub fn update(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: UpdatePrinter = body(req)?;
    let current = printers::get(&api.hub.db.read(), req.param("slug"))?;
    let m = model::by_name(&current.model);
    if let Some(name) = &r.name {
        check_name(name)?;
    }
    let (uri, snmp_community) = match &r.connection {
        Some(c) => {
            let (uri, community) = uri_of(api, c)?;
            (Some(uri), Some(community))
        }
        None => (None, None),
    };
    let media = match (&r.media, m) {
        (Some(Some(x)), Some(m)) => Some(Some(check_media(m, x)?)),
        (Some(Some(x)), None) => Some(Some(x.clone())),
        (Some(None), _) => Some(None),
        // A new emulator URI names its medium: take it, as on create.
        (None, Some(m)) => match uri.as_deref().and_then(uri_media) {
            Some(x) => Some(Some(check_media(m, &x)?)),
            None => None,
        },
        (None, None) => None,
    };
    let upd = PrinterUpdate {
        name: r.name.as_ref().map(|n| n.trim().to_string()),
        uri,
        snmp_community,
        media,
        half_cut: r.cut_defaults.as_ref().and_then(|c| c.half_cut),
        auto_cut: r.cut_defaults.as_ref().and_then(|c| c.auto_cut),
        auto_resume: r.auto_resume,
        queue_timeout_s: check_timeout(&r.queue)?,
        max_length_mm: check_max_length(m, r.max_length_mm)?,
        enabled: r.enabled,
    };
    apply(api, req, &current.id, &upd)
}

/// Commits a printer change with its audit row and applies it to the
/// printer's thread.
fn apply(api: &Api, req: &Request, id: &str, upd: &PrinterUpdate) -> Result<Reply, ApiError> {
    let who = by(req);
    let (_, after) = api.hub.write(|w| printers::update(w, id, upd, &who))?;
    control::apply_printer(&api.hub, &after)?;
    json(200, &shapes::admin_printer(&after))
}

fn set_enabled(api: &Api, req: &mut Request, enabled: bool) -> Result<Reply, ApiError> {
    let current = printers::get(&api.hub.db.read(), req.param("slug"))?;
    if current.enabled == enabled {
        return Err(ApiError::Conflict {
            code: if enabled {
                "already_enabled"
            } else {
                "already_disabled"
            },
            message: format!(
                "printer `{}` is already {}",
                current.slug,
                if enabled { "enabled" } else { "disabled" }
            ),
        });
    }
    let upd = PrinterUpdate {
        enabled: Some(enabled),
        ..PrinterUpdate::default()
    };
    apply(api, req, &current.id, &upd)
}

/// `POST /api/v1/admin/printers/{slug}/disable`
pub fn disable(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    set_enabled(api, req, false)
}

/// `POST /api/v1/admin/printers/{slug}/enable`
pub fn enable(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    set_enabled(api, req, true)
}
