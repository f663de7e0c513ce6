//! The web console for people: a hand-written HTML/CSS/JS page
//! served by the binary itself, the session routes, the field table of the
//! print form, "test connection", and Server-Sent Events ([`sse`]).
//!
//! - Assets are compiled in with `include_bytes!` (no build step, nothing
//!   fetched from the internet: it works on an offline Pi). Each is served
//!   at `/assets/<name>.<hash>.<ext>`, the hash being the first 12 hex
//!   digits of its SHA-256, with `Cache-Control: public, max-age=31536000,
//!   immutable`; the page itself (`/`, `/ui`) is `no-cache` and names the
//!   hashed URLs, so a new binary is picked up at the next load.
//! - Every console answer carries the security headers ([`secure`]): a
//!   strict Content-Security-Policy (no inline script or style, nothing
//!   from elsewhere), `X-Frame-Options: DENY`, `Referrer-Policy:
//!   no-referrer`, `X-Content-Type-Options: nosniff`.
//! - Sessions live in `auth::session`; the routes here only open, show and
//!   end them.
//!
//! **Invariant:** the console holds no access rule of its own. It hides
//! what a key cannot use, but every action is an ordinary API request that
//! the gate decides.

pub mod sse;

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::{body, json, Api, ApiError};
use crate::auth::{session, AuthError, Gate, KEY_HEADER};
use crate::http::{Reply, Request, Response};
use crate::hub::device::DeviceSpec;
use crate::hub::now_ms;
use crate::render::ContentType;

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// One embedded file.
pub struct Asset {
    /// Name in the source tree (`app.js`).
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every embedded file but the page itself.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "messages.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/messages.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/style.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("assets/icon.svg"),
    },
];

const INDEX: &str = include_str!("assets/index.html");

/// `app.js` -> `app.3f2a9c0d1e4b.js`.
fn hashed_name(asset: &Asset) -> String {
    let hex: String = Sha256::digest(asset.bytes)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match asset.name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hex}.{ext}"),
        None => format!("{}.{hex}", asset.name),
    }
}

struct Built {
    /// (hashed URL name, asset)
    names: Vec<(String, &'static Asset)>,
    index: Vec<u8>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let names: Vec<(String, &'static Asset)> =
            ASSETS.iter().map(|a| (hashed_name(a), a)).collect();
        let mut index = INDEX.to_string();
        for (hashed, asset) in &names {
            index = index.replace(
                &format!("{{{{{}}}}}", asset.name),
                &format!("/assets/{hashed}"),
            );
        }
        Built {
            names,
            index: index.into_bytes(),
        }
    })
}

/// The hashed URL of an asset (tests, README).
pub fn asset_url(name: &str) -> Option<String> {
    built()
        .names
        .iter()
        .find(|(_, a)| a.name == name)
        .map(|(h, _)| format!("/assets/{h}"))
}

/// Adds the console's security headers.
pub fn secure(resp: Response) -> Response {
    resp.with_header("Content-Security-Policy", CSP)
        .with_header("X-Frame-Options", "DENY")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Content-Type-Options", "nosniff")
}

/// `GET /` and `GET /ui`: the page.
pub fn index(_api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    let resp = Response::new(200, "text/html; charset=utf-8", built().index.clone())
        .with_header("Cache-Control", "no-cache");
    Ok(Reply::Respond(secure(resp)))
}

/// `GET /assets/{file}`: an embedded file by its hashed name.
pub fn asset(_api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let file = req.param("file");
    let Some((_, a)) = built().names.iter().find(|(h, _)| h == file) else {
        return Err(ApiError::NotFound {
            code: "asset_not_found",
            message: format!("no console file named {file}"),
        });
    };
    let resp = Response::new(200, a.content_type, a.bytes.to_vec())
        .with_header("Cache-Control", "public, max-age=31536000, immutable");
    Ok(Reply::Respond(secure(resp)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    key: String,
}

fn gate(api: &Api) -> Result<&Gate, ApiError> {
    api.auth()
        .map(|a| &a.gate)
        .ok_or_else(|| AuthError::MissingCredentials.into())
}

fn session_view(p: &crate::http::Principal, s: &session::Session, name: &str) -> Value {
    json!({
        "csrf_token": s.csrf_token,
        "expires_at": crate::hub::rfc3339(s.expires_at),
        "key_id": p.api_key_id(),
        "key_name": name,
        "scope": p.scope.to_string(),
        "printers": p.printers.ids(),
    })
}

/// `POST /api/session {key}`: verifies the key like the gate does and opens
/// a session (cookie + CSRF token). A public route: the key in the body is
/// the credential.
pub fn sign_in(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let r: SignIn = body(req)?;
    let gate = gate(api)?;
    let key = r.key.trim().to_string();
    let now = now_ms();
    let conn = api.hub.db.writer();
    let principal = gate.authenticate(
        &conn,
        |name: &str| {
            name.eq_ignore_ascii_case(KEY_HEADER)
                .then_some(key.as_str())
        },
        req.peer.map(|p| p.ip()),
        now,
    )?;
    let id = principal.api_key_id().ok_or(AuthError::InvalidKey)?;
    let row = crate::auth::store::get_key(&conn, &id)?;
    let created = session::create(&conn, &id, row.expires_at, now)?;
    drop(conn);
    let secure_cookie = session::cookie_is_secure(req.header("x-forwarded-proto"));
    let max_age = (created.session.expires_at - now) / 1000;
    let resp = Response::json(201, &session_view(&principal, &created.session, &row.name))
        .with_header("Cache-Control", "no-store")
        .with_header(
            "Set-Cookie",
            &session::set_cookie(&created.token, max_age, secure_cookie),
        );
    Ok(Reply::Respond(secure(resp)))
}

/// The session of this request's cookie; `None` for a request the gate let
/// in by other credentials (an API key header, SSO).
fn current(api: &Api, req: &Request) -> Result<Option<(String, session::Session)>, ApiError> {
    if req.header(KEY_HEADER).is_some() {
        return Ok(None);
    }
    let Some(token) = session::cookie_token(req.header("cookie")) else {
        return Ok(None);
    };
    let s = session::lookup(&api.hub.db.read(), token, now_ms())?;
    Ok(Some((token.to_string(), s)))
}

/// `GET /api/session`: who is signed in, with the CSRF token. Without a
/// session (an API key header, SSO) it says who the caller is, with
/// `"session": false` and no token.
pub fn show(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    let Some((_, s)) = current(api, req)? else {
        let p = req.principal.as_ref();
        let body = json!({
            "session": false,
            "key_id": p.and_then(|p| p.api_key_id()),
            "key_name": p.map(|p| p.actor()).unwrap_or_default(),
            "scope": p.map(|p| p.scope.as_str()),
            "printers": p.map(|p| p.printers.ids()).unwrap_or_default(),
        });
        return json(200, &body);
    };
    let conn = api.hub.db.read();
    let p = session::principal(&conn, &s, now_ms())?;
    let row = crate::auth::store::get_key(&conn, &s.api_key_id)?;
    drop(conn);
    let mut view = session_view(&p, &s, &row.name);
    view["session"] = json!(true);
    let resp = Response::json(200, &view).with_header("Cache-Control", "no-store");
    Ok(Reply::Respond(secure(resp)))
}

/// `DELETE /api/session`: signs out (needs the CSRF token, like every
/// state change of a session). Without a session there is nothing to end.
pub fn sign_out(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    if let Some((token, _)) = current(api, req)? {
        session::delete(&api.hub.db.writer(), &token)?;
    }
    let secure_cookie = session::cookie_is_secure(req.header("x-forwarded-proto"));
    let resp = Response::empty(204)
        .with_header("Set-Cookie", &session::clear_cookie(secure_cookie))
        .with_header("Cache-Control", "no-store");
    Ok(Reply::Respond(secure(resp)))
}

/// Optional fields per content type, next to the required ones of
/// `ContentType::required_fields` (the table `render::data::validate` uses).
fn optional_fields(ct: ContentType) -> &'static [&'static str] {
    match ct {
        ContentType::BarcodeOneLine | ContentType::BarcodeTwoLines => &["barcode_type"],
        ContentType::Image => &["image_mode", "threshold"],
        ContentType::QrTwoLines | ContentType::TextTwoLines => &["secondary"],
        _ => &[],
    }
}

/// `GET /api/content-types`: every content type with the fields the API
/// validates it against (the print form is built from this), and the
/// printer models with their resolution (the preview is shown at printed
/// size; the admin form offers the names).
pub fn content_types(_api: &Api, _req: &mut Request) -> Result<Reply, ApiError> {
    let list: Vec<Value> = ContentType::ALL
        .iter()
        .map(|ct| {
            json!({
                "name": ct.as_str(),
                "required": ct.required_fields(),
                "optional": optional_fields(*ct),
            })
        })
        .collect();
    let models: Vec<Value> = crate::brother::model::all()
        .iter()
        .map(|m| json!({"name": m.name, "family": m.family, "dpi": m.dpi}))
        .collect();
    json(200, &json!({"content_types": list, "models": models}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionTest {
    model: String,
    connection: crate::api::admin::Connection,
    #[serde(default)]
    slug: Option<String>,
}

/// `POST /api/v1/admin/connection-test {model, connection, slug?}`: opens
/// the connection like a printer thread would, asks for the status block
/// and answers it (nothing is printed or stored).
pub fn connection_test(api: &Api, req: &mut Request) -> Result<Reply, ApiError> {
    // Like creating a printer, probing connections could reach beyond a key
    // limited to some printers: only unrestricted admin keys may.
    if req
        .principal
        .as_ref()
        .is_none_or(|p| p.printers.is_limited())
    {
        return Err(AuthError::PrinterNotAllowed.into());
    }
    let r: ConnectionTest = body(req)?;
    let model = crate::brother::model::by_name(&r.model).ok_or_else(|| {
        ApiError::invalid(
            "validation_error",
            format!("model: unknown model `{}`", r.model),
        )
    })?;
    let (uri, community) = crate::api::admin::uri_of(api, &r.connection)?;
    // The community is a secret: used for the probe, never answered.
    let device_uri = match &community {
        Some(c) if uri.starts_with("tcp://") => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}community={c}")
        }
        _ => uri.clone(),
    };
    let slug = r
        .slug
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .unwrap_or_else(|| "connection-test".into());
    let spec = DeviceSpec {
        printer_key: slug,
        model,
        uri: device_uri,
        data_dir: api.hub.config.data_dir.clone(),
        reach: api.hub.config.reach(),
    };
    let started = std::time::Instant::now();
    let outcome = api.hub.devices.open(&spec).and_then(|mut d| d.status());
    let ms = started.elapsed().as_millis() as u64;
    let body = match outcome {
        Ok(st) => json!({
            "ok": st.problem.is_none(),
            "uri": uri,
            "online": true,
            "media": st.media,
            "problem": st.problem.as_ref().map(|p| json!({"code": p.code, "message": p.message})),
            "details": st.details,
            "took_ms": ms,
        }),
        Err(e) => json!({
            "ok": false,
            "uri": uri,
            "online": false,
            "error": {"code": e.code, "message": e.message},
            "took_ms": ms,
        }),
    };
    json(200, &body)
}
