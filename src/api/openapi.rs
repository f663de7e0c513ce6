//! `/openapi.json`: the OpenAPI 3.1 document, built from the route table
//! (so no route can be missing) plus the request/response schemas.

use serde_json::{json, Map, Value};

use super::Api;
use crate::http::{Router, Scope};
use crate::hub::jobs::JobState;
use crate::render::ContentType;

fn query_params(method: &str, path: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match (method, path) {
        ("GET", "/api/jobs") => &[
            ("state", "string", "only jobs in this state"),
            ("printer_id", "string", "only jobs of this printer"),
            ("batch_id", "string", "only jobs of this batch"),
            (
                "since",
                "string",
                "RFC 3339 time: jobs created at or after it, oldest first (upstream's paging; with `cursor`: a filter on the newest-first list)",
            ),
            ("limit", "integer", "page size, 1 to 200 (default 50)"),
            (
                "cursor",
                "string",
                "opaque: the X-Next-Cursor of the previous page",
            ),
        ],
        ("GET", "/api/printers/{printer_id}/queue") => &[
            ("limit", "integer", "page size, 1 to 200 (default 100)"),
            (
                "cursor",
                "string",
                "opaque: the X-Next-Cursor of the previous page",
            ),
        ],
        ("GET", "/api/jobs/{job_id}")
        | ("GET", "/jobs/{job_id}")
        | ("GET", "/api/batches/{batch_id}") => &[
            (
                "wait",
                "number",
                "hold the request up to this many seconds (max 60) for a change",
            ),
            (
                "since",
                "integer",
                "the version the client has; answer at once when the resource is newer",
            ),
        ],
        ("GET", "/api/events") => &[
            (
                "since",
                "integer",
                "cursor: events with a larger id (0 = from the oldest kept)",
            ),
            (
                "wait",
                "number",
                "hold the request up to this many seconds (max 60) for an event",
            ),
            ("printer_id", "string", "only events of this printer"),
            ("batch_id", "string", "only events of this batch"),
            ("limit", "integer", "1 to 500 (default 500)"),
        ],
        ("GET", "/api/printers") => &[("slug", "string", "only the printer with this slug")],
        ("DELETE", "/api/v1/admin/printers/{slug}") => &[(
            "cancel_queued",
            "boolean",
            "cancel its waiting jobs (else 409 while jobs wait)",
        )],
        ("GET", "/api/admin/webhooks/{subscription_id}/deliveries") => &[
            ("state", "string", "pending, delivered or failed"),
            ("limit", "integer", "page size, 1 to 200 (default 50)"),
            ("cursor", "integer", "the X-Next-Cursor of the previous page"),
        ],
        ("GET", "/api/v1/admin/printers") => {
            &[("include_disabled", "boolean", "list disabled printers too")]
        }
        _ => &[],
    }
}

fn request_body(method: &str, path: &str) -> Option<&'static str> {
    match (method, path) {
        ("POST", "/print") => Some("PrintRequest"),
        ("POST", "/api/print/{printer_key}/batch") => Some("BatchRequest"),
        ("POST", "/api/render/preview") => Some("PreviewRequest"),
        ("POST", "/api/v1/admin/printers") => Some("PrinterCreatePayload"),
        ("POST", "/api/session") => Some("SessionCreate"),
        ("POST", "/api/v1/admin/connection-test") => Some("ConnectionTest"),
        ("PUT", "/api/v1/admin/printers/{slug}") => Some("PrinterUpdatePayload"),
        ("POST", "/api/webhook/spoolman") => Some("SpoolmanWebhookPayload"),
        ("POST", "/api/webhook/grocy") => Some("GrocyWebhookPayload"),
        ("POST", "/api/admin/webhooks") => Some("SubscriptionCreate"),
        ("POST", "/api/admin/api-keys") => Some("ApiKeyCreate"),
        ("PATCH", "/api/admin/api-keys/{key_id}") => Some("ApiKeyPatch"),
        ("PATCH", "/api/admin/webhooks/{subscription_id}") => Some("SubscriptionPatch"),
        _ => None,
    }
}

fn success(method: &str, path: &str) -> (&'static str, Option<&'static str>, &'static str) {
    match (method, path) {
        ("POST", "/print") => ("202", Some("PrintJobResponse"), "accepted"),
        ("POST", "/api/print/{printer_key}/batch") => ("202", Some("BatchResponse"), "accepted"),
        ("POST", "/api/render/preview") => ("200", None, "image/png"),
        ("GET", "/api/jobs") => ("200", Some("JobList"), "jobs, newest first"),
        ("GET", "/jobs/{job_id}") | ("POST", "/jobs/{job_id}/resume") => {
            ("200", Some("PrintJobStatusResponse"), "job")
        }
        ("POST", "/api/jobs/{job_id}/retry") => ("201", Some("JobRead"), "the new job"),
        (_, p) if p.starts_with("/api/jobs/") => ("200", Some("JobRead"), "job"),
        ("GET", "/api/batches/{batch_id}") => ("200", Some("BatchRead"), "batch snapshot"),
        ("GET", "/api/events") => ("200", Some("EventFeed"), "events"),
        ("GET", "/api/printers") => ("200", Some("PrinterList"), "printers"),
        ("GET", "/api/printers/{printer_id}") => ("200", Some("PrinterRead"), "printer"),
        ("GET", "/api/printers/{printer_id}/status") => ("200", Some("PrinterStatus"), "status"),
        ("GET", "/api/printers/{printer_id}/queue") => ("200", Some("JobList"), "queue"),
        ("POST", p) if p.starts_with("/api/printers/") => ("204", None, "done"),
        ("POST", "/printer/resume") => ("200", Some("PrinterResumeResponse"), "resumed"),
        ("GET", "/api/v1/admin/printers") => ("200", Some("AdminPrinterList"), "printers"),
        ("POST", "/api/v1/admin/printers") => ("201", Some("AdminPrinterRead"), "created"),
        ("DELETE", "/api/v1/admin/printers/{slug}") => {
            ("200", Some("PrinterDeleted"), "deleted with its jobs")
        }
        (_, p) if p.starts_with("/api/v1/admin/printers/") => {
            ("200", Some("AdminPrinterRead"), "printer")
        }
        ("GET", "/api/lookup/{app}/{entity_id}") => ("200", Some("LookupResult"), "the entity"),
        ("POST", p) if p.starts_with("/api/webhook/") => {
            ("202", Some("WebhookAcceptedResponse"), "label queued")
        }
        ("GET", "/loc/{entity_id}")
        | ("GET", "/asset/{entity_id}")
        | ("GET", "/spool/{entity_id}")
        | ("GET", "/product/{entity_id}") => (
            "302",
            None,
            "redirect to the entity in its app; 200/404/502 text/html page otherwise",
        ),
        ("GET", "/api/admin/webhooks") => ("200", Some("SubscriptionList"), "subscriptions"),
        ("POST", "/api/admin/webhooks") => (
            "201",
            Some("SubscriptionCreated"),
            "created; the secret is shown this once",
        ),
        ("DELETE", "/api/admin/webhooks/{subscription_id}") => ("204", None, "deleted"),
        ("GET", "/api/admin/webhooks/{subscription_id}/deliveries") => {
            ("200", Some("DeliveryList"), "deliveries, newest first")
        }
        ("POST", "/api/admin/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver") => {
            ("202", Some("Delivery"), "queued for sending now")
        }
        (_, "/api/admin/webhooks/{subscription_id}") => {
            ("200", Some("Subscription"), "subscription")
        }
        ("GET", "/healthz") => ("200", Some("Healthz"), "alive"),
        ("POST", "/api/session") => (
            "201",
            Some("Session"),
            "signed in; Set-Cookie lh_session (HttpOnly, SameSite=Strict, Secure behind TLS)",
        ),
        ("GET", "/api/session") => ("200", Some("Session"), "the session"),
        ("DELETE", "/api/session") => ("204", None, "signed out; the cookie is cleared"),
        ("GET", "/api/content-types") => ("200", Some("ContentTypeList"), "content types"),
        ("POST", "/api/v1/admin/connection-test") => (
            "200",
            Some("ConnectionTestResult"),
            "the status block or the error",
        ),
        ("GET", "/") | ("GET", "/ui") => ("200", None, "text/html"),
        ("GET", "/assets/{file}") => ("200", None, "a console file"),
        ("GET", "/readiness") => (
            "200",
            Some("ReadinessResponse"),
            "ready or degraded (503: not ready)",
        ),
        ("GET", "/openapi.json") => ("200", None, "this document"),
        _ => ("200", None, "ok"),
    }
}

/// The route's access policy as the gate applies it (`x-policy`).
fn policy(route: &crate::http::Route<Api>) -> Value {
    let p = route.policy;
    let names: Vec<Value> = route
        .resources()
        .iter()
        .map(
            |(name, kind)| json!({"name": name, "names": format!("{kind:?}").to_ascii_lowercase()}),
        )
        .collect();
    json!({
        "resources": names,
        "submission": p.submission,
        "idempotent": p.idempotent,
        "lists": p.lists,
        "unrestricted": p.unrestricted,
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Builds the document from the route table.
pub fn document(router: &Router<Api>) -> Value {
    let mut paths = Map::new();
    for route in &router.routes {
        let method = route.method.to_ascii_lowercase();
        let mut params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        for (name, ty, desc) in query_params(route.method, route.path) {
            params.push(json!({"name": name, "in": "query", "required": false,
                               "schema": {"type": ty}, "description": desc}));
        }
        if route.policy.idempotent {
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
                "schema": {"type": "string", "maxLength": 255},
                "description": "a retry with the same key within 24 h returns the first response; another body gets 409"}));
        }
        if route.path.starts_with("/api/webhook/") {
            params.push(json!({"name": "X-API-Key", "in": "header", "required": false,
                "schema": {"type": "string"},
                "description": "PRINTER_HUB_WEBHOOK_API_KEY (Grocy's own webhook may send it as the body field api_key instead); missing: 401"}));
        }
        let (code, schema, desc) = success(route.method, route.path);
        let mut ok = json!({"description": desc});
        if let Some(s) = schema {
            ok["content"] = json!({"application/json": {"schema": schema_ref(s)}});
        } else if desc == "image/png" {
            ok["content"] =
                json!({"image/png": {"schema": {"type": "string", "format": "binary"}}});
        }
        let mut op = json!({
            "operationId": format!("{}_{}", method, route.path.trim_matches('/').replace(['/', '{', '}', '.'], "_")),
            "summary": route.summary,
            "x-scope": route.scope.as_str(),
            "x-policy": policy(route),
            "parameters": params,
            "responses": {
                code: ok,
                "default": {"description": "error", "content": {"application/problem+json": {"schema": schema_ref("Problem")}}}
            }
        });
        if route.scope != Scope::Public {
            op["security"] = json!([{"ApiKey": [route.scope.as_str()]}]);
        }
        if let Some(body) = request_body(route.method, route.path) {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema_ref(body)}}});
            if route.path == "/api/webhook/grocy" {
                op["requestBody"]["content"]["application/x-www-form-urlencoded"] =
                    json!({"schema": schema_ref(body)});
            }
        }
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        item[method.as_str()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "labelhub",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted print hub for Brother PT and QL label printers. Errors are RFC 7807 problem+json with a stable error_code."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-Label-Hub-Key"}},
            "schemas": schemas(),
        }
    })
}

fn schemas() -> Value {
    let ts = json!({"type": ["string", "null"], "format": "date-time"});
    let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
    let content_type = schema_ref("ContentType");
    let mut map = Map::new();
    let part = json!({
        "JobState": {"type": "string", "enum": states},
        "ContentType": {"type": "string", "enum": ContentType::NAMES},
        "Problem": {"type": "object", "required": ["type", "title", "status", "error_code"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "instance": {"type": "string"}, "error_code": {"type": "string"},
            "error_message": {"type": "string"}, "error_detail": {"type": "object"}}},
        "PrintOptions": {"type": "object", "additionalProperties": false, "properties": {
            "copies": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
            "auto_cut": {"type": "boolean", "default": true},
            "high_resolution": {"type": "boolean", "default": false},
            "half_cut": {"type": "boolean", "default": false},
            "last_page": {"type": "boolean", "default": true}}},
        "RawLabelData": {"type": "object", "description": "title, primary_id, qr_payload, secondary[], items[] and the renderer's extra fields (barcode, image, red ...)",
            "properties": {"title": {"type": "string"}, "primary_id": {"type": "string"}, "qr_payload": {"type": "string"},
                "secondary": {"type": "array", "items": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"item": {"type": "string"}, "qr_payload": {"type": "string"}}}}}},
        "PrintRequest": {"type": "object", "additionalProperties": false, "required": ["content_type"],
            "description": "exactly one of `data` and `lookup`", "properties": {
            "content_type": content_type, "options": schema_ref("PrintOptions"), "data": schema_ref("RawLabelData"),
            "lookup": schema_ref("PrintLookupRequest"),
            "printer": {"type": "string", "description": "slug or id; the default printer when absent"}}},
        "BatchItem": {"type": "object", "additionalProperties": false, "required": ["content_type"],
            "description": "exactly one of `data` and `lookup`", "properties": {
            "content_type": content_type, "options": schema_ref("PrintOptions"), "data": schema_ref("RawLabelData"),
            "lookup": schema_ref("PrintLookupRequest")}}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    let part = json!({
        "BatchRequest": {"type": "object", "additionalProperties": false, "required": ["items"], "properties": {
            "items": {"type": "array", "minItems": 1, "maxItems": 500, "items": schema_ref("BatchItem")},
            "printer_slug": {"type": "string"}, "half_cut_override": {"type": "boolean"}}},
        "PreviewRequest": {"type": "object", "additionalProperties": false, "required": ["content_type", "data"], "properties": {
            "content_type": content_type, "data": schema_ref("RawLabelData"), "tape_mm": {"type": "number", "default": 12},
            "model": {"type": "string", "default": "PT-P750W"}, "media": {"type": "string"}, "high_resolution": {"type": "boolean"}}},
        "PrintJobResponse": {"type": "object", "required": ["job_id", "status"], "properties": {
            "job_id": {"type": "string"}, "status": {"const": "queued"}, "batch_id": {"type": "string"},
            "printer_id": {"type": "string"}, "job_ids": {"type": "array", "items": {"type": "string"}}}},
        "BatchResponse": {"type": "object", "required": ["batch_id", "printer_id", "queued_at", "job_ids"], "properties": {
            "batch_id": {"type": "string"}, "printer_id": {"type": "string"}, "queued_at": {"type": "string"},
            "job_ids": {"type": "array", "items": {"type": "string"}, "description": "every physical label, in print order"}}},
        "JobRead": {"type": "object", "properties": {
            "id": {"type": "string"}, "printer_id": {"type": "string"}, "batch_id": {"type": "string"},
            "template_key": {"type": "null"}, "state": schema_ref("JobState"), "payload": {"type": "object"}, "result": {"type": ["object", "null"]},
            "error": {"type": ["string", "null"]}, "error_code": {"type": ["string", "null"]}, "error_detail": {"type": ["object", "null"]},
            "position": {"type": "integer"}, "copy_index": {"type": "integer"}, "copy_total": {"type": "integer"},
            "retry_of": {"type": ["string", "null"]}, "api_key_id": {"type": ["string", "null"]}, "source_ip": {"type": ["string", "null"]},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"}, "started_at": ts, "finished_at": ts,
            "version": {"type": "integer"}}}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    let part = json!({
        "JobList": {"type": "array", "items": schema_ref("JobRead")},
        "PrintJobStatusResponse": {"type": "object", "properties": {
            "job_id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "paused", "printing", "completed", "failed", "cancelled"],
                "description": "upstream's vocabulary on this route: done = completed; failed_restart = failed with error_code printer_interrupted"}, "error_code": {"type": ["string", "null"]},
            "error_message": {"type": ["string", "null"]}, "error_detail": {"type": ["object", "null"]},
            "created_at": {"type": "string"}, "started_at": ts, "finished_at": ts, "live": {"type": "null"},
            "version": {"type": "integer"}}},
        "BatchSummary": {"type": "object", "properties": {
            "total": {"type": "integer"}, "queued": {"type": "integer"}, "paused": {"type": "integer"}, "printing": {"type": "integer"},
            "done": {"type": "integer"}, "failed": {"type": "integer"}, "failed_restart": {"type": "integer"}, "cancelled": {"type": "integer"},
            "all_terminal": {"type": "boolean"}, "expected": {"type": "integer"}, "evicted": {"type": "integer"}}},
        "BatchRead": {"type": "object", "properties": {
            "id": {"type": "string"}, "printer_id": {"type": "string"}, "created_by": {"type": ["string", "null"]},
            "created_at": {"type": "string"}, "jobs": {"type": "array", "items": schema_ref("JobRead")},
            "summary": schema_ref("BatchSummary"), "version": {"type": "integer"}}},
        "Event": {"type": "object", "properties": {
            "id": {"type": "integer"}, "at": {"type": "string"},
            "type": {"type": "string", "enum": ["job.created", "job.state_changed", "printer.status", "printer.media_changed", "printer.changed"]},
            "printer_id": {"type": ["string", "null"]}, "job_id": {"type": ["string", "null"]}, "batch_id": {"type": ["string", "null"]},
            "data": {"type": "object"}}}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    let part = json!({
        "EventFeed": {"type": "object", "properties": {
            "events": {"type": "array", "items": schema_ref("Event")}, "next": {"type": "integer"},
            "last_id": {"type": "integer"}, "more": {"type": "boolean"}}},
        "PrinterRead": {"type": "object", "properties": {
            "id": {"type": "string"}, "slug": {"type": "string"}, "name": {"type": "string"}, "model": {"type": "string"},
            "backend": {"type": "string"}, "connection": {"type": "object"}, "enabled": {"type": "boolean"},
            "paused": {"type": "boolean"}, "paused_reason": {"type": ["string", "null"]}, "paused_detail": {"type": ["string", "null"]},
            "media": {"type": ["string", "null"]}, "loaded_media": {"type": ["string", "null"]}, "online": {"type": ["boolean", "null"]},
            "storage_error": {"type": ["string", "null"], "description": "set while the printer holds its queue after a failed write"},
            "thread_alive": {"type": "boolean"},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"}}},
        "PrinterList": {"type": "array", "items": schema_ref("PrinterRead")},
        "PrinterStatus": {"type": "object", "properties": {
            "printer_id": {"type": "string"}, "online": {"type": ["boolean", "null"]}, "tape_loaded": {"type": ["string", "null"]},
            "error_state": {"type": ["string", "null"]}, "captured_at": ts, "last_probe_age_s": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]}, "paused": {"type": "boolean"},
            "paused_reason": {"type": ["string", "null"]}, "paused_detail": {"type": ["string", "null"]},
            "storage_error": {"type": ["string", "null"]}, "media": {"type": ["string", "null"]}, "auto_resume": {"type": "boolean"},
            "thread_alive": {"type": "boolean"}, "current_job": {"type": ["string", "null"]}, "details": {}}},
        "PrinterResumeResponse": {"type": "object", "properties": {"printer_id": {"type": "string"}, "state": {"type": "string"}}}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    let queue = json!({"type": "object", "additionalProperties": false, "properties": {"timeout_s": {"type": "integer", "default": 30}}});
    let cut_defaults = json!({"type": "object", "additionalProperties": false,
        "properties": {"half_cut": {"type": "boolean"}, "auto_cut": {"type": "boolean"}}});
    let part = json!({
        "ApiKeyCreate": {"type": "object", "additionalProperties": false, "required": ["name", "scopes"], "properties": {
            "name": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string", "enum": ["read", "print", "admin"]}},
            "allowed_printer_ids": {"type": ["array", "null"], "items": {"type": "string"}, "description": "absent or null: every printer; [] is refused"},
            "rate_limit_per_minute": {"type": "integer", "default": 60}, "notes": {"type": ["string", "null"]},
            "expires_at": {"type": ["string", "null"], "format": "date-time"}}},
        "ApiKeyPatch": {"type": "object", "additionalProperties": false, "description": "absent = unchanged", "properties": {
            "enabled": {"type": ["boolean", "null"]}, "rate_limit_per_minute": {"type": ["integer", "null"]}, "notes": {"type": ["string", "null"]},
            "allowed_printer_ids": {"type": ["array", "null"], "items": {"type": "string"}, "description": "null: every printer; [] is refused"}}},
        "PrinterConnection": {"type": "object", "additionalProperties": false, "properties": {
            "uri": {"type": "string", "description": "tcp://host:9100, usb:///dev/usb/lp0, dir:///path, emulator:?media=12&speed=instant|real|<mm/s>"},
            "host": {"type": "string"}, "port": {"type": "integer"}, "snmp": {"type": "object", "additionalProperties": false, "properties": {
                "discover": {"type": "boolean", "default": false, "description": "poll the status over SNMP"},
                "community": {"type": "string", "description": "a secret (default public)"}}}}},
        "PrinterCreatePayload": {"type": "object", "additionalProperties": false, "required": ["name", "slug", "model", "connection"], "properties": {
            "name": {"type": "string"}, "slug": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"},
            "model": {"type": "string"}, "backend": {"type": "string", "enum": ["ptouch", "brother_ql"]},
            "connection": schema_ref("PrinterConnection"), "media": {"type": "string"},
            "queue": queue, "cut_defaults": cut_defaults,
            "auto_resume": {"type": "boolean"}, "enabled": {"type": "boolean"},
            "max_length_mm": {"type": "integer", "minimum": 1, "description": "longest label accepted (default 500, at most the model's limit)"}}},
        "PrinterUpdatePayload": {"type": "object", "additionalProperties": false, "properties": {
            "name": {"type": "string"}, "connection": schema_ref("PrinterConnection"), "media": {"type": ["string", "null"]},
            "queue": queue, "cut_defaults": cut_defaults, "auto_resume": {"type": "boolean"}, "enabled": {"type": "boolean"},
            "max_length_mm": {"type": "integer", "minimum": 1}}},
        "AdminPrinterRead": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "slug": {"type": "string"}, "model": {"type": "string"},
            "backend": {"type": "string"}, "connection": {"type": "object"}, "media": {"type": ["string", "null"]},
            "queue": {"type": "object"}, "cut_defaults": {"type": "object"}, "auto_resume": {"type": "boolean"},
            "max_length_mm": {"type": "integer"},
            "enabled": {"type": "boolean"}, "paused": {"type": "boolean"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"}}},
        "AdminPrinterList": {"type": "array", "items": schema_ref("AdminPrinterRead")},
        "PrinterDeleted": {"type": "object", "properties": {
            "deleted": {"type": "string", "description": "the slug"}, "id": {"type": "string"},
            "jobs_cancelled": {"type": "integer"}, "jobs_deleted": {"type": "integer"}}}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    let part = json!({
        "PrintLookupRequest": {"type": "object", "additionalProperties": false, "required": ["app"],
            "description": "label data from Snipe-IT (asset tag), Grocy (product id) or Spoolman (spool id); `identifier` is upstream's name for `id`",
            "properties": {"app": {"type": "string", "enum": ["snipeit", "grocy", "spoolman"]},
                "id": {"type": ["string", "integer"]}, "identifier": {"type": ["string", "integer"]}}},
        "LookupResult": {"type": "object", "required": ["app", "id"], "properties": {
            "app": {"type": "string", "enum": ["snipeit", "grocy", "spoolman"]}, "id": {"type": "string"},
            "name": {"type": ["string", "null"]}, "url": {"type": ["string", "null"]},
            "extra": {"type": "object", "properties": {"secondary": {"type": "array", "items": {"type": "string"}}, "primary_id": {"type": "string"}}}}},
        "SpoolmanWebhookPayload": {"type": "object", "required": ["spool_id", "type"], "description": "header X-API-Key: PRINTER_HUB_WEBHOOK_API_KEY; other fields are ignored",
            "properties": {"spool_id": {"type": ["string", "integer"]}, "type": {"type": "string"},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 10, "description": "copies"},
                "content_type": {"$ref": "#/components/schemas/ContentType", "default": "qr_two_lines"}}},
        "GrocyWebhookPayload": {"description": "upstream's body, or Grocy's own label printer webhook (LABEL_PRINTER_WEBHOOK; JSON or application/x-www-form-urlencoded; the secret in X-API-Key or as `api_key` via LABEL_PRINTER_PARAMS)",
            "oneOf": [
                {"type": "object", "required": ["product_id", "type"], "properties": {
                    "product_id": {"type": ["string", "integer"]}, "type": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 10, "description": "copies"},
                    "content_type": {"$ref": "#/components/schemas/ContentType", "default": "qr_two_lines"}}},
                {"type": "object", "required": ["grocycode"], "properties": {
                    "grocycode": {"type": "string", "examples": ["grcy:p:12:6574b7f3d2e1a"]},
                    "product": {"type": "string"}, "battery": {"type": "string"}, "chore": {"type": "string"}, "recipe": {"type": "string"},
                    "due_date": {"type": "string", "examples": ["DD: 2026-12-24"]}, "api_key": {"type": "string"},
                    "details": {"type": "object"}}}]},
        "WebhookAcceptedResponse": {"type": "object", "required": ["job_id"], "properties": {
            "job_id": {"type": "string"}, "job_ids": {"type": "array", "items": {"type": "string"}},
            "batch_id": {"type": "string"}, "printer_id": {"type": "string"}}},
        "SubscriptionCreate": {"type": "object", "additionalProperties": false, "required": ["url", "events"], "properties": {
            "url": {"type": "string", "description": "http(s) URL inside PRINTER_HUB_PRINTER_NETWORKS"},
            "events": {"type": "array", "items": schema_ref("OutboundEventType")},
            "secret": {"type": "string", "description": "whsec_ + base64 of 16-64 bytes; generated when absent"},
            "enabled": {"type": "boolean", "default": true}, "description": {"type": "string", "maxLength": 500}}},
        "SubscriptionPatch": {"type": "object", "additionalProperties": false, "properties": {
            "url": {"type": "string"}, "events": {"type": "array", "items": schema_ref("OutboundEventType")},
            "enabled": {"type": "boolean"}, "description": {"type": "string"}}},
        "OutboundEventType": {"type": "string", "enum": crate::integrations::outbox::EVENT_TYPES},
        "Subscription": {"type": "object", "properties": {
            "id": {"type": "string"}, "url": {"type": "string"}, "events": {"type": "array", "items": schema_ref("OutboundEventType")},
            "enabled": {"type": "boolean"}, "description": {"type": ["string", "null"]},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "last_delivery": {"type": "object", "properties": {"status": {"type": ["string", "null"], "enum": ["delivered", "retrying", "failed", null]},
                "http_status": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]}, "at": ts,
                "retry_at": {"type": ["string", "null"], "format": "date-time", "description": "held after a failure: nothing is sent before this time"}}},
            "deliveries": {"type": "object", "properties": {"pending": {"type": "integer"}, "delivered": {"type": "integer"}, "failed": {"type": "integer"}}}}},
        "SubscriptionCreated": {"allOf": [schema_ref("Subscription"), {"type": "object", "properties": {"secret": {"type": "string"}}}]},
        "SubscriptionList": {"type": "array", "items": schema_ref("Subscription")},
        "Delivery": {"type": "object", "description": "one message: its id is the webhook-id of every attempt", "properties": {
            "id": {"type": "string"}, "subscription_id": {"type": "string"}, "event_id": {"type": "integer"},
            "type": schema_ref("OutboundEventType"), "payload": {"type": "object"}, "created_at": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "delivered", "failed"]}, "attempts": {"type": "integer"},
            "next_attempt_at": ts, "last_attempt_at": ts, "last_http_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]}, "delivered_at": ts, "seq": {"type": "integer"}}},
        "DeliveryList": {"type": "array", "items": schema_ref("Delivery")}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    let part = json!({
        "Healthz": {"type": "object", "properties": {
            "status": {"type": "string"}, "version": {"type": "string"}, "revision": {"type": "string"},
            "build_date": {"type": "string"}, "repository": {"type": "string"}, "sse_active_subscribers": {"type": "integer"},
            "waiting_requests": {"type": "integer"}, "uptime_s": {"type": "integer"}}},
        "ReadinessResponse": {"type": "object", "properties": {
            "status": {"type": "string", "enum": ["ready", "degraded", "not-ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["ok", "fail", "skipped", "stale"]}, "detail": {"type": "string"}, "metric": {"type": "object"}}}},
            "version": {"type": "string"}, "revision": {"type": "string"}}}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    let part = json!({
        "SessionCreate": {"type": "object", "required": ["key"], "additionalProperties": false,
            "properties": {"key": {"type": "string", "description": "an API key (lh_pat_...)"}}},
        "Session": {"type": "object", "properties": {
            "session": {"type": "boolean", "description": "false when the request used an API key header or SSO (then no csrf_token)"},
            "csrf_token": {"type": "string", "description": "send as X-CSRF-Token with every cookie-authenticated request that changes state"},
            "expires_at": {"type": "string", "format": "date-time"}, "key_id": {"type": "string"},
            "key_name": {"type": "string"}, "scope": {"type": "string", "enum": ["read", "print", "admin"]},
            "printers": {"type": "array", "items": {"type": "string"}, "description": "allowed printer ids; empty = all"}}},
        "ContentTypeList": {"type": "object", "properties": {
            "content_types": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "required": {"type": "array", "items": {"type": "string"}},
                "optional": {"type": "array", "items": {"type": "string"}}}}},
            "models": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "family": {"type": "string"}, "dpi": {"type": "integer"}}}}}},
        "ConnectionTest": {"type": "object", "required": ["model", "connection"], "properties": {
            "model": {"type": "string"}, "connection": schema_ref("PrinterConnection"), "slug": {"type": "string"}}},
        "ConnectionTestResult": {"type": "object", "properties": {
            "ok": {"type": "boolean"}, "uri": {"type": "string"}, "online": {"type": "boolean"},
            "media": {"type": ["string", "null"]}, "problem": {"type": ["object", "null"]},
            "details": {"type": "object"}, "error": {"type": "object"}, "took_ms": {"type": "integer"}}}
    });
    if let Value::Object(m) = part {
        map.extend(m);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_with_its_scope() {
        let router = super::super::routes();
        let doc = document(&router);
        for route in &router.routes {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing", route.method, route.path);
            assert_eq!(op["x-scope"], route.scope.as_str());
        }
        let n_ops: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_object().unwrap().len())
            .sum();
        assert_eq!(n_ops, router.routes.len(), "no extra operations");
        // Every referenced schema exists.
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                doc["components"]["schemas"][&name].is_object(),
                "schema {name} missing"
            );
        }
    }
}
