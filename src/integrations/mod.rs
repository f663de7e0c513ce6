//! The apps people already run: lookups in Snipe-IT, Grocy and Spoolman
//! (`lookup`), inbound webhooks from Spoolman and Grocy (`inbound`),
//! outbound webhooks with a durable outbox (`outbox`, signed by `sign`),
//! the one outbound HTTP client (`client`) and the network policy of
//! outbound connections (`policy`). Settings in `config`.
//!
//! Layering: `api::integrations` calls in here; this module calls `hub`
//! (submit, its database). The outbox rows of an event are written by
//! `hub::events::outbox`, in the event's transaction. Knows nothing of HTTP
//! requests or responses.
//!
//! **Invariant:** nothing here waits on another host while holding the
//! database mutex: lookups run before a submission, deliveries between two
//! short transactions.

pub mod client;
pub mod config;
pub mod inbound;
pub mod lookup;
pub mod outbox;
pub mod policy;
pub mod sign;

use std::sync::Arc;

pub use config::IntegrationsConfig;
pub use lookup::{App, Entity, Kind, Lookups};

use crate::hub::HubError;

/// Every error of the integrations layer; statuses are chosen in
/// `api::error`.
#[derive(Debug)]
pub enum IntegrationError {
    /// `app` is not snipeit, grocy or spoolman.
    UnknownApp(String),
    /// The app's URL is not configured.
    NotConfigured {
        app: &'static str,
    },
    /// The app answered that the entity does not exist.
    NotFound {
        app: &'static str,
        id: String,
    },
    /// The app is unreachable, slow, failing or answering garbage.
    LookupFailed {
        app: &'static str,
        cause: String,
    },
    /// Inbound webhooks are off (no `PRINTER_HUB_WEBHOOK_API_KEY`).
    WebhookNotConfigured,
    /// No or a wrong webhook secret.
    WebhookUnauthorized {
        missing: bool,
    },
    /// A request body or field is wrong.
    Invalid {
        field: String,
        message: String,
    },
    /// A subscription or delivery that does not exist.
    NoSuchSubscription(String),
    NoSuchDelivery(String),
    /// A subscriber URL outside the network policy.
    UrlNotAllowed {
        url: String,
        reason: String,
    },
    Hub(HubError),
}

impl IntegrationError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> IntegrationError {
        IntegrationError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            IntegrationError::UnknownApp(_) => "unknown_app",
            IntegrationError::NotConfigured { .. } => "integration_not_configured",
            IntegrationError::NotFound { .. } => "lookup_not_found",
            IntegrationError::LookupFailed { .. } => "integration_lookup_failed",
            IntegrationError::WebhookNotConfigured => "webhook_not_configured",
            IntegrationError::WebhookUnauthorized { missing: true } => "missing_webhook_key",
            IntegrationError::WebhookUnauthorized { missing: false } => "invalid_webhook_key",
            IntegrationError::Invalid { .. } => "validation_error",
            IntegrationError::NoSuchSubscription(_) => "subscription_not_found",
            IntegrationError::NoSuchDelivery(_) => "delivery_not_found",
            IntegrationError::UrlNotAllowed { .. } => "url_not_allowed",
            IntegrationError::Hub(e) => e.code(),
        }
    }
}

impl std::fmt::Display for IntegrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntegrationError::UnknownApp(app) => {
                write!(
                    f,
                    "unknown app `{app}`: expected snipeit, grocy or spoolman"
                )
            }
            IntegrationError::NotConfigured { app } => write!(
                f,
                "{app} is not configured (set PRINTER_HUB_{}_URL)",
                app.to_ascii_uppercase()
            ),
            IntegrationError::NotFound { app, id } => write!(f, "{app} has no entity `{id}`"),
            IntegrationError::LookupFailed { app, cause } => {
                write!(f, "the {app} lookup failed: {cause}")
            }
            IntegrationError::WebhookNotConfigured => write!(
                f,
                "inbound webhooks are off: set PRINTER_HUB_WEBHOOK_API_KEY (32+ characters)"
            ),
            IntegrationError::WebhookUnauthorized { missing: true } => {
                write!(f, "the X-API-Key header is missing")
            }
            IntegrationError::WebhookUnauthorized { missing: false } => {
                write!(f, "the webhook key is wrong")
            }
            IntegrationError::Invalid { field, message } => write!(f, "{field}: {message}"),
            IntegrationError::NoSuchSubscription(id) => write!(f, "no webhook subscription {id}"),
            IntegrationError::NoSuchDelivery(id) => write!(f, "no delivery {id}"),
            IntegrationError::UrlNotAllowed { url, reason } => {
                write!(f, "subscriber URL {url} is not allowed: {reason}")
            }
            IntegrationError::Hub(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IntegrationError {}

impl From<HubError> for IntegrationError {
    fn from(e: HubError) -> IntegrationError {
        IntegrationError::Hub(e)
    }
}

impl From<rusqlite::Error> for IntegrationError {
    fn from(e: rusqlite::Error) -> IntegrationError {
        IntegrationError::Hub(HubError::from(e))
    }
}

/// The running integrations: configuration, lookup cache and the sender's
/// wake-up line.
pub struct Integrations {
    pub config: IntegrationsConfig,
    pub lookups: Lookups,
    pub sender: outbox::Wake,
}

impl Integrations {
    pub fn new(config: IntegrationsConfig) -> Arc<Integrations> {
        Arc::new(Integrations {
            lookups: Lookups::new(&config),
            config,
            sender: outbox::Wake::new(),
        })
    }
}

/// Constant-time comparison of two secrets (length is not hidden).
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
