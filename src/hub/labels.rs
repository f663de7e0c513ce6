//! The rendering seam: turns a print request item (content type + label
//! data) into the page the printer thread will send, for one model and
//! medium. The hub renders at submit time, so errors are synchronous, and
//! stores the packed bitmap on the job row.
//!
//! [`Renderer`] is the one trait between the hub and `render`;
//! [`RenderLabels`] is the production implementation, unit tests use a fake.

use std::fmt;

use serde_json::Value;

use crate::bitmap::Bitmap;
use crate::brother::{media, model};

/// A rendered label in label orientation (see `bitmap`): the encoder's page.
pub type RenderedPage = crate::brother::encode::Page;

pub use crate::render::{ContentType, LabelData, Target};

/// What to render: typed at the API edge ([`parse`]), the target built once
/// per submission.
#[derive(Debug, Clone)]
pub struct LabelRequest<'a> {
    pub target: &'a Target,
    pub content_type: ContentType,
    pub data: &'a LabelData,
}

/// Reads a content type by name and label data in the upstream
/// `RawLabelData` shape (plus the renderer's extra fields): the one place
/// request content becomes typed.
pub fn parse(content_type: &str, data: Value) -> Result<(ContentType, LabelData), LabelError> {
    let ct = ContentType::parse(content_type).ok_or_else(|| LabelError::Render {
        code: "unknown_content_type",
        message: format!("unknown content_type `{content_type}`"),
        detail: Some(serde_json::json!({
            "content_type": content_type,
            "known": ContentType::NAMES,
        })),
    })?;
    let data: LabelData = serde_json::from_value(data).map_err(|e| LabelError::Render {
        code: "validation_error",
        message: format!("data: {e}"),
        detail: None,
    })?;
    Ok((ct, data))
}

/// Why a label cannot be made.
#[derive(Debug, Clone)]
pub enum LabelError {
    /// The model name is not in the model table.
    UnknownModel(String),
    /// The medium is unknown or not supported by the model.
    Media(media::MediaError),
    /// The renderer refused the content; `detail` names fields where it
    /// can. The HTTP status follows from `code` (in `api::error`).
    Render {
        code: &'static str,
        message: String,
        detail: Option<Value>,
    },
}

impl LabelError {
    pub fn code(&self) -> &'static str {
        match self {
            LabelError::UnknownModel(_) => "unknown_model",
            LabelError::Media(e) => e.code(),
            LabelError::Render { code, .. } => code,
        }
    }
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::UnknownModel(name) => write!(f, "unknown printer model `{name}`"),
            LabelError::Media(e) => write!(f, "{e}"),
            LabelError::Render { message, .. } => f.write_str(message),
        }
    }
}

impl From<media::MediaError> for LabelError {
    fn from(e: media::MediaError) -> LabelError {
        LabelError::Media(e)
    }
}

/// Renders labels and previews.
pub trait Renderer: Send + Sync {
    /// Renders one label for `req.model` on `req.media`.
    fn render(&self, req: &LabelRequest<'_>) -> Result<RenderedPage, LabelError>;
    /// A preview PNG of a rendered page.
    fn to_png(&self, page: &RenderedPage) -> Vec<u8>;
}

/// The production renderer: `crate::render`.
pub struct RenderLabels;

impl Renderer for RenderLabels {
    fn render(&self, req: &LabelRequest<'_>) -> Result<RenderedPage, LabelError> {
        crate::render::render(req.content_type, req.data, req.target).map_err(render_error)
    }

    fn to_png(&self, page: &RenderedPage) -> Vec<u8> {
        crate::render::to_png(page)
    }
}

fn render_error(e: crate::render::RenderError) -> LabelError {
    let mut detail = serde_json::Map::new();
    if let Some(field) = e.field() {
        detail.insert("field".into(), Value::String(field.to_string()));
    }
    if !e.missing_fields().is_empty() {
        detail.insert(
            "missing_fields".into(),
            serde_json::json!(e.missing_fields()),
        );
    }
    LabelError::Render {
        code: e.code(),
        message: e.to_string(),
        detail: (!detail.is_empty()).then_some(Value::Object(detail)),
    }
}

/// Looks a model up by name.
pub fn model_by_name(name: &str) -> Result<&'static model::Model, LabelError> {
    model::by_name(name).ok_or_else(|| LabelError::UnknownModel(name.to_string()))
}

/// Packs a page for the `jobs` row.
pub fn pack(page: &RenderedPage) -> (u32, u32, Vec<u8>, Option<Vec<u8>>) {
    (
        page.black.width(),
        page.black.height(),
        page.black.as_bytes().to_vec(),
        page.red.as_ref().map(|r| r.as_bytes().to_vec()),
    )
}

/// Unpacks a stored page; `None` when the stored bytes do not match the
/// stored size (a row that cannot be printed again).
pub fn unpack(stored: super::jobs::StoredPage) -> Option<RenderedPage> {
    let black = Bitmap::from_packed(stored.width, stored.height, stored.black)?;
    let red = match stored.red {
        Some(bytes) => Some(Bitmap::from_packed(stored.width, stored.height, bytes)?),
        None => None,
    };
    Some(RenderedPage { black, red })
}
