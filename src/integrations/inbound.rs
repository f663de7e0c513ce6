//! Inbound webhooks: Spoolman and Grocy tell the hub to print a label.
//!
//! Three body shapes are accepted:
//! - upstream's Spoolman body `{spool_id, type, quantity?}` (`spool_id` a
//!   string or, unlike upstream, a whole number: §14 item 18);
//! - upstream's Grocy body `{product_id, type, quantity?}`;
//! - Grocy's own label printer webhook (`LABEL_PRINTER_WEBHOOK` in Grocy's
//!   `config.php`), so Grocy needs nothing but the URL. Grocy builds the
//!   payload in `controllers/StockApiController.php` (`ProductPrintLabel`,
//!   `StockEntryPrintLabel`), `services/StockService.php` (`AddProduct` with
//!   `print_stock_label`), and the battery/chore/recipe controllers:
//!   `array_merge(['product' => <name>, 'grocycode' => 'grcy:p:<id>[:<stock
//!   id>]', 'details' => ...], LABEL_PRINTER_PARAMS)` plus `due_date` =
//!   `"DD: <date>"` (spelt `duedate` in older versions) when best-before
//!   tracking is on; batteries send `battery`, chores `chore`, recipes
//!   `recipe` instead of `product`. `helpers/WebhookRunner.php` POSTs it as
//!   JSON when `LABEL_PRINTER_HOOK_JSON` is true, else as form fields
//!   (`application/x-www-form-urlencoded`), with a 2 s Guzzle timeout (the
//!   hub answers after the durable submit, well within it). Grocy cannot
//!   send custom headers, so the secret may come as an `api_key` field
//!   through `LABEL_PRINTER_PARAMS`.
//!
//! `quantity` (or `copies`) becomes the number of copies (1 to 10);
//! `content_type` may pick the layout (default `qr_two_lines`).

use serde_json::{json, Map, Value};

use super::lookup::{App, Kind};
use super::IntegrationError;

/// The layout webhook labels use unless the body names one.
pub const DEFAULT_CONTENT_TYPE: &str = "qr_two_lines";
/// Most copies a webhook may ask for (upstream's `copies` limit).
pub const MAX_COPIES: u32 = 10;

/// What a webhook asks to print.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// Look the entity up, then print it.
    Lookup { kind: Kind, id: String },
    /// The body carries everything (Grocy's own webhook).
    Data(Value),
}

/// A parsed webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub app: App,
    pub label: Label,
    pub event_type: Option<String>,
    pub copies: u32,
    pub content_type: String,
    /// The secret, when the body carried it (`api_key`).
    pub body_key: Option<String>,
}

/// Parses a webhook body for `app`. `form` = the body is
/// `application/x-www-form-urlencoded`.
pub fn parse(app: App, body: &[u8], form: bool) -> Result<Inbound, IntegrationError> {
    let obj: Map<String, Value> = if form {
        form_fields(body)?
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(IntegrationError::invalid("body", "expected a JSON object")),
            Err(e) => {
                return Err(IntegrationError::invalid(
                    "body",
                    format!("not JSON ({e}); Grocy form posts need Content-Type application/x-www-form-urlencoded"),
                ))
            }
        }
    };
    let str_field = |name: &str| -> Result<Option<String>, IntegrationError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(IntegrationError::invalid(
                name,
                format!("expected a string, got {other}"),
            )),
        }
    };
    let id_field = |name: &str| -> Result<Option<String>, IntegrationError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(Some(n.to_string())),
            Some(other) => Err(IntegrationError::invalid(
                name,
                format!("expected an id (string or whole number), got {other}"),
            )),
        }
    };
    let copies = match obj.get("copies").or_else(|| obj.get("quantity")) {
        None | Some(Value::Null) => 1,
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if n.fract() == 0.0 && (1.0..=MAX_COPIES as f64).contains(&n) => n as u32,
                _ => {
                    return Err(IntegrationError::invalid(
                        "quantity",
                        format!(
                            "the number of copies, a whole number from 1 to {MAX_COPIES}; got {v}"
                        ),
                    ))
                }
            }
        }
    };
    let content_type = str_field("content_type")?.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into());
    let body_key = str_field("api_key").ok().flatten();
    let event_type = str_field("type").ok().flatten();
    let label = match app {
        App::Spoolman => {
            let id = id_field("spool_id")?
                .ok_or_else(|| IntegrationError::invalid("spool_id", "required"))?;
            if event_type.is_none() && !obj.contains_key("type") {
                return Err(IntegrationError::invalid("type", "required"));
            }
            Label::Lookup {
                kind: Kind::Spool,
                id,
            }
        }
        App::Grocy => {
            if let Some(code) = str_field("grocycode")? {
                Label::Data(grocy_native(&obj, &code)?)
            } else {
                let id = id_field("product_id")?.ok_or_else(|| {
                    IntegrationError::invalid(
                        "product_id",
                        "required (or Grocy's own label webhook fields: grocycode, product)",
                    )
                })?;
                if !obj.contains_key("type") {
                    return Err(IntegrationError::invalid("type", "required"));
                }
                Label::Lookup {
                    kind: Kind::Product,
                    id,
                }
            }
        }
        App::SnipeIt => {
            return Err(IntegrationError::invalid(
                "app",
                "Snipe-IT has no webhook here",
            ))
        }
    };
    Ok(Inbound {
        app,
        label,
        event_type,
        copies,
        content_type,
        body_key,
    })
}

/// Label data from Grocy's own payload: the grocycode is the QR (Grocy's
/// scanner reads it back), the name the title, the due date (or the code)
/// the second line.
fn grocy_native(obj: &Map<String, Value>, code: &str) -> Result<Value, IntegrationError> {
    if !code.starts_with("grcy:") || code.len() > 200 {
        return Err(IntegrationError::invalid(
            "grocycode",
            "expected a Grocycode like grcy:p:12",
        ));
    }
    let name = ["product", "battery", "chore", "recipe"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            IntegrationError::invalid(
                "product",
                "required with grocycode (or battery, chore, recipe)",
            )
        })?;
    let due = ["due_date", "duedate"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.ends_with(':'));
    Ok(json!({
        "source_app": "grocy",
        "title": name,
        "primary_id": due.unwrap_or(code),
        "qr_payload": code,
        "secondary": [],
    }))
}

/// `application/x-www-form-urlencoded` fields; nested `details[...]` keys
/// (PHP's http_build_query of Grocy's `details`) are skipped.
fn form_fields(body: &[u8]) -> Result<Map<String, Value>, IntegrationError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| IntegrationError::invalid("body", "form data is not UTF-8"))?;
    let mut out = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        if k.contains('[') {
            continue;
        }
        out.insert(k, Value::String(decode(v)?));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, IntegrationError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        IntegrationError::invalid("body", "bad %-escape in form data")
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| IntegrationError::invalid("body", "form data is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoolman_numeric_and_string_ids() {
        let a = parse(
            App::Spoolman,
            br#"{"spool_id": 7, "type": "updated"}"#,
            false,
        )
        .unwrap();
        let b = parse(
            App::Spoolman,
            br#"{"spool_id": "7", "type": "updated", "x": 1}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            a.label,
            Label::Lookup {
                kind: Kind::Spool,
                id: "7".into()
            }
        );
        assert_eq!(a, b);
        assert_eq!(a.copies, 1);
        let c = parse(
            App::Spoolman,
            br#"{"spool_id": 7, "type": "x", "quantity": 3}"#,
            false,
        )
        .unwrap();
        assert_eq!(c.copies, 3);
        for bad in [
            &br#"{"type": "x"}"#[..],
            br#"{"spool_id": 7}"#,
            br#"{"spool_id": 1.5, "type": "x"}"#,
            br#"{"spool_id": 7, "type": "x", "quantity": 11}"#,
            br#"[1]"#,
            b"garbage",
        ] {
            assert!(
                parse(App::Spoolman, bad, false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn grocy_native_json_and_form() {
        let j = parse(
            App::Grocy,
            br#"{"product":"Milk","grocycode":"grcy:p:12:5f0c","due_date":"DD: 2026-12-24","details":{"product":{"id":12}},"font_family":"Source Sans Pro (Regular)","api_key":"k"}"#,
            false,
        )
        .unwrap();
        let Label::Data(d) = &j.label else { panic!() };
        assert_eq!(d["title"], "Milk");
        assert_eq!(d["qr_payload"], "grcy:p:12:5f0c");
        assert_eq!(d["primary_id"], "DD: 2026-12-24");
        assert_eq!(j.body_key.as_deref(), Some("k"));
        let f = parse(
            App::Grocy,
            b"product=Milk&grocycode=grcy%3Ap%3A12%3A5f0c&due_date=DD%3A+2026-12-24&details%5Bproduct%5D%5Bid%5D=12&api_key=k",
            true,
        )
        .unwrap();
        assert_eq!(f.label, j.label);
        let u = parse(
            App::Grocy,
            br#"{"product_id": 3, "type": "stock_added"}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            u.label,
            Label::Lookup {
                kind: Kind::Product,
                id: "3".into()
            }
        );
        assert!(parse(App::Grocy, br#"{"grocycode":"nope","product":"x"}"#, false).is_err());
        assert!(parse(App::Grocy, b"product=%zz", true).is_err());
    }
}
