//! The one place where errors become HTTP: every layer's error type maps to
//! a status and an RFC 7807 `application/problem+json` body with a stable
//! `error_code`.
//!
//! Body: `{type, title, status, detail, instance, error_code, error_message,
//! error_detail?}`. `error_message` repeats `detail` for clients of the
//! upstream hub's flat error shape.
//!
//! **Invariant:** no other module picks an error status; handlers return
//! [`ApiError`] and the router's hooks call [`problem`] / [`http_error`].

use serde_json::{json, Value};

use crate::auth::AuthError;
use crate::http::front::FrontError;
use crate::http::{HttpError, Request, Response};
use crate::hub::labels::LabelError;
use crate::hub::HubError;

/// Every error a handler can return.
#[derive(Debug)]
pub enum ApiError {
    /// From the hub layer.
    Hub(HubError),
    /// From the HTTP layer.
    Http(HttpError),
    /// The body is not valid JSON for the route, or a parameter is bad.
    Invalid {
        code: &'static str,
        message: String,
        detail: Option<Value>,
    },
    /// A resource the route names does not exist (not a hub lookup).
    NotFound { code: &'static str, message: String },
    /// A state conflict decided in the api layer.
    Conflict { code: &'static str, message: String },
    /// The body's media type is not one the route takes (415).
    UnsupportedMediaType { code: &'static str, message: String },
    /// From the integrations layer.
    Integration(crate::integrations::IntegrationError),
    /// Authentication or authorisation failed.
    Auth {
        status: u16,
        code: &'static str,
        message: String,
        retry_after: Option<u64>,
    },
    /// A bounded pool of the api layer is full (previews): 429
    /// with `Retry-After`.
    Busy {
        code: &'static str,
        message: String,
        retry_after_s: u64,
    },
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Hub(e) => e.code(),
            ApiError::Http(e) => e.code(),
            ApiError::Integration(e) => e.code(),
            ApiError::Invalid { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Busy { code, .. }
            | ApiError::UnsupportedMediaType { code, .. }
            | ApiError::Auth { code, .. } => code,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Hub(e) => hub_status(e),
            ApiError::Http(e) => match e {
                HttpError::NotFound { .. } => 404,
                HttpError::MethodNotAllowed { .. } => 405,
                HttpError::BodyTooLarge { .. } => 413,
                HttpError::BadBody { .. } | HttpError::BadParameter { .. } => 400,
                HttpError::Busy | HttpError::ShuttingDown => 503,
                HttpError::Panic => 500,
            },
            ApiError::Integration(e) => integration_status(e),
            ApiError::Invalid { .. } => 422,
            ApiError::NotFound { .. } => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::UnsupportedMediaType { .. } => 415,
            ApiError::Auth { status, .. } => *status,
            ApiError::Busy { .. } => 429,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Hub(e) => e.to_string(),
            ApiError::Http(e) => e.to_string(),
            ApiError::Integration(e) => e.to_string(),
            ApiError::Invalid { message, .. }
            | ApiError::NotFound { message, .. }
            | ApiError::Conflict { message, .. }
            | ApiError::Busy { message, .. }
            | ApiError::UnsupportedMediaType { message, .. }
            | ApiError::Auth { message, .. } => message.clone(),
        }
    }

    fn detail(&self) -> Option<Value> {
        match self {
            ApiError::Hub(HubError::Label(LabelError::Render { detail, .. })) => detail.clone(),
            ApiError::Hub(HubError::Invalid { field, .. }) => Some(json!({"field": field})),
            ApiError::Hub(HubError::InvalidJobState { id, state, action }) => {
                Some(json!({"job_id": id, "state": state, "action": action}))
            }
            ApiError::Http(HttpError::MethodNotAllowed { allowed, .. }) => {
                Some(json!({"allowed": allowed}))
            }
            ApiError::Http(HttpError::BodyTooLarge { limit }) => {
                Some(json!({"limit_bytes": limit}))
            }
            ApiError::Http(HttpError::BadParameter { name, .. }) => {
                Some(json!({"parameter": name}))
            }
            ApiError::Invalid { detail, .. } => detail.clone(),
            ApiError::Integration(e) => integration_detail(e),
            _ => None,
        }
    }

    /// Whether the server is at fault (logged as an error).
    fn is_server_fault(&self) -> bool {
        self.status() >= 500 && !matches!(self, ApiError::Http(HttpError::Busy))
    }
}

fn hub_status(e: &HubError) -> u16 {
    match e {
        HubError::Db(_)
        | HubError::Commit(_)
        | HubError::DatabaseTooNew { .. }
        | HubError::Migration { .. }
        | HubError::Io { .. } => 500,
        HubError::Storage { fault, .. } => match fault {
            crate::hub::db::StorageFault::Full => 507,
            _ => 503,
        },
        HubError::NotFound { .. } => 404,
        HubError::InvalidJobState { .. } => 409,
        HubError::Invalid { .. } => 422,
        HubError::Conflict { .. } => 409,
        HubError::Label(l) => match l {
            LabelError::UnknownModel(_) => 422,
            // The loaded medium is unknown to the model table, or the model
            // cannot print on it: a printer-side condition (upstream's
            // `unsupported_tape` was 409 too).
            LabelError::Media(_) => 409,
            LabelError::Render {
                code: "unknown_media" | "media_not_supported" | "unsupported_tape",
                ..
            } => 409,
            // The renderer names what is wrong; the status is chosen here:
            // an oversized upload, a broken invariant, else unprintable data.
            LabelError::Render {
                code: "image_too_large",
                ..
            } => 413,
            LabelError::Render {
                code: "internal_render_error",
                ..
            } => 500,
            LabelError::Render { .. } => 422,
        },
        HubError::Handoff { .. } | HubError::ShuttingDown => 503,
        HubError::Quota { .. } => 429,
    }
}

/// Integrations: an entity the app does not have is 404;
/// an app that is down, slow, failing or answering garbage is 502 (the
/// hub is a gateway to it); an unconfigured app or webhook secret is 503.
fn integration_status(e: &crate::integrations::IntegrationError) -> u16 {
    use crate::integrations::IntegrationError as I;
    match e {
        I::UnknownApp(_) | I::Invalid { .. } | I::UrlNotAllowed { .. } => 422,
        I::NotFound { .. } | I::NoSuchSubscription(_) | I::NoSuchDelivery(_) => 404,
        I::LookupFailed { .. } => 502,
        I::NotConfigured { .. } | I::WebhookNotConfigured => 503,
        I::WebhookUnauthorized { .. } => 401,
        I::Hub(h) => hub_status(h),
    }
}

fn integration_detail(e: &crate::integrations::IntegrationError) -> Option<Value> {
    use crate::integrations::IntegrationError as I;
    match e {
        I::NotFound { app, id } => Some(json!({"app": app, "id": id})),
        I::LookupFailed { app, cause } => Some(json!({"app": app, "cause": cause})),
        I::NotConfigured { app } => Some(json!({"app": app})),
        I::Invalid { field, .. } => Some(json!({"field": field})),
        I::UrlNotAllowed { url, reason } => Some(json!({"url": url, "reason": reason})),
        I::Hub(HubError::Label(LabelError::Render { detail, .. })) => detail.clone(),
        _ => None,
    }
}

impl From<crate::integrations::IntegrationError> for ApiError {
    fn from(e: crate::integrations::IntegrationError) -> ApiError {
        match e {
            crate::integrations::IntegrationError::Hub(h) => ApiError::Hub(h),
            other => ApiError::Integration(other),
        }
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> ApiError {
        ApiError::Hub(e)
    }
}

/// Access control: 401 for credentials, 403 for scope, printer
/// and direct connections, 429 with `Retry-After` for rate limits.
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let (status, retry_after) = match &e {
            AuthError::MissingCredentials
            | AuthError::InvalidKey
            | AuthError::InvalidSsoToken
            | AuthError::SessionInvalid => (401, None),
            AuthError::JsonTooDeep { .. } => (400, None),
            AuthError::InsufficientScope { .. }
            | AuthError::PrinterNotAllowed
            | AuthError::CsrfTokenInvalid
            | AuthError::DirectConnection => (403, None),
            AuthError::RateLimited { retry_after_s, .. }
            | AuthError::TooManyConnections { retry_after_s } => (429, Some(*retry_after_s)),
            AuthError::KeyNotFound { .. } => {
                return ApiError::NotFound {
                    code: e.code(),
                    message: e.to_string(),
                }
            }
            AuthError::LastAdminKey => {
                return ApiError::Conflict {
                    code: e.code(),
                    message: e.to_string(),
                }
            }
            AuthError::Invalid { field, .. } => {
                return ApiError::Invalid {
                    code: e.code(),
                    message: e.to_string(),
                    detail: Some(json!({"field": field})),
                }
            }
            // A key change the disk refused answers like
            // any other write the disk refused.
            AuthError::Db(db) => match crate::hub::db::StorageFault::of(db) {
                Some(fault) => {
                    return ApiError::Hub(HubError::Storage {
                        fault,
                        message: db.to_string(),
                    })
                }
                None => (500, None),
            },
            AuthError::Random(_) | AuthError::Io { .. } => (500, None),
        };
        ApiError::Auth {
            status,
            code: e.code(),
            message: e.to_string(),
            retry_after,
        }
    }
}

/// The answers the front door gives by itself (before tiny_http), as
/// `(status, content type, problem+json body)`; the front adds
/// `Retry-After` where [`FrontError::retry_after_s`] says so.
pub fn front_problem(err: &FrontError) -> (u16, &'static str, Vec<u8>) {
    let status = match err {
        FrontError::BadRequest { .. } => 400,
        FrontError::HeaderTimeout | FrontError::BodyTimeout => 408,
        FrontError::BodyTooLarge { .. } => 413,
        FrontError::TooManyConnections | FrontError::TooManyWaits => 429,
        FrontError::HeadTooLarge { .. } | FrontError::TooManyHeaders { .. } => 431,
        FrontError::UnsupportedTransferEncoding => 501,
        FrontError::Busy | FrontError::BackendUnavailable => 503,
        FrontError::UnsupportedVersion => 505,
    };
    let resp = problem(
        None,
        &ApiError::Auth {
            status,
            code: err.code(),
            message: err.to_string(),
            retry_after: None,
        },
    );
    (status, "application/problem+json", resp.body)
}

impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> ApiError {
        ApiError::Http(e)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// The problem+json response for an error.
pub fn problem(req: Option<&Request>, err: &ApiError) -> Response {
    let status = err.status();
    let code = err.code();
    let message = err.message();
    if err.is_server_fault() {
        log::error!(
            "{} {} -> {status} {code}: {message}",
            req.map(|r| r.method.as_str()).unwrap_or("-"),
            req.map(|r| r.path.as_str()).unwrap_or("-")
        );
    }
    let mut body = json!({
        "type": format!("urn:labelhub:problem:{code}"),
        "title": reason(status),
        "status": status,
        "detail": message,
        "error_code": code,
        "error_message": message,
    });
    if let Some(req) = req {
        body["instance"] = Value::String(req.path.clone());
    }
    if let Some(detail) = err.detail() {
        body["error_detail"] = detail;
    }
    let mut resp = Response::new(
        status,
        "application/problem+json",
        body.to_string().into_bytes(),
    );
    match err {
        ApiError::Http(HttpError::MethodNotAllowed { allowed, .. }) => {
            resp = resp.with_header("Allow", &allowed.join(", "));
        }
        ApiError::Auth {
            retry_after: Some(s),
            ..
        } => {
            resp = resp.with_header("Retry-After", &s.to_string());
        }
        ApiError::Http(HttpError::Busy) | ApiError::Hub(HubError::Handoff { .. }) => {
            resp = resp.with_header("Retry-After", "1");
        }
        ApiError::Hub(HubError::Storage { fault, .. }) => {
            resp = resp.with_header("Retry-After", &storage_retry_after(*fault).to_string());
        }
        ApiError::Hub(HubError::Quota { retry_after_s, .. })
        | ApiError::Busy { retry_after_s, .. } => {
            resp = resp.with_header("Retry-After", &retry_after_s.to_string());
        }
        _ => {}
    }
    resp
}

/// Seconds a client should wait before retrying a write the disk refused:
/// space or a remount takes an operator; a replaced database a restart.
pub fn storage_retry_after(fault: crate::hub::db::StorageFault) -> u64 {
    match fault {
        crate::hub::db::StorageFault::Full => 30,
        crate::hub::db::StorageFault::Unavailable => 10,
        crate::hub::db::StorageFault::Replaced => 60,
    }
}

/// The response for an HTTP-layer error.
pub fn http_error(req: Option<&Request>, err: &HttpError) -> Response {
    problem(req, &ApiError::Http(err.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (HubError::not_found("job", "x").into(), 404, "job_not_found"),
            (
                HubError::not_found("batch", "x").into(),
                404,
                "batch_not_found",
            ),
            (
                HubError::InvalidJobState {
                    id: "x".into(),
                    state: "done".into(),
                    action: "cancel",
                }
                .into(),
                409,
                "invalid_job_state",
            ),
            (
                HubError::invalid("items", "too many").into(),
                422,
                "validation_error",
            ),
            (
                HubError::Handoff {
                    printer: "p".into(),
                    message: "gone".into(),
                }
                .into(),
                503,
                "handoff_failed",
            ),
            (HttpError::Panic.into(), 500, "internal_error"),
            (
                HubError::from(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    None,
                ))
                .into(),
                507,
                "storage_full",
            ),
            (
                HubError::from(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                    None,
                ))
                .into(),
                503,
                "storage_unavailable",
            ),
            (
                HubError::from(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_WRITE),
                    None,
                ))
                .into(),
                503,
                "storage_unavailable",
            ),
            (
                AuthError::Db(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    None,
                ))
                .into(),
                507,
                "storage_full",
            ),
            (
                HubError::Storage {
                    fault: crate::hub::db::StorageFault::Replaced,
                    message: "gone".into(),
                }
                .into(),
                503,
                "storage_replaced",
            ),
            (
                HttpError::BodyTooLarge { limit: 1 }.into(),
                413,
                "body_too_large",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{code}");
            assert_eq!(err.code(), code);
            let resp = problem(None, &err);
            let body: Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(body["error_code"], code);
            assert_eq!(body["status"], status);
            assert_eq!(resp.headers[0].1, "application/problem+json");
            if code.starts_with("storage_") {
                assert!(
                    resp.headers.iter().any(|h| h.0 == "Retry-After"),
                    "{code}: Retry-After"
                );
            }
        }
    }
    #[test]
    fn render_refusals_get_their_status_here() {
        let render = |code| {
            ApiError::from(HubError::Label(LabelError::Render {
                code,
                message: String::new(),
                detail: None,
            }))
        };
        for (code, status) in [
            ("image_too_large", 413),
            ("internal_render_error", 500),
            ("media_not_supported", 409),
            ("unsupported_tape", 409),
            ("text_does_not_fit", 422),
            ("content_type_data_mismatch", 422),
        ] {
            assert_eq!(render(code).status(), status, "{code}");
        }
    }
}
