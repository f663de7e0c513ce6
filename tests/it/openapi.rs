//! `/openapi.json` against the types it describes, so neither can drift:
//!
//! - request schemas: each names exactly the fields of its serde struct,
//!   `required` exactly the fields without a default, and
//!   `additionalProperties: false` exactly when the struct refuses unknown
//!   fields; a value built from the schema deserialises;
//! - response schemas: the answers of every JSON route (in this process)
//!   and the response shapes of every job state, with optional fields both
//!   ways, validate against their schema, every field they carry is in it,
//!   and every property of a schema is carried by some answer;
//! - enums: job states from `JobState`, content types from `ContentType`.
//!
//! The validator is small: `$ref`, `allOf`, `oneOf`, `const`, `type`,
//! `enum`, `required`, `properties`, `additionalProperties`, `items`,
//! `minimum`/`maximum`, `minItems`/`maxItems`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use labelhub::hub::jobs::JobState;
use labelhub::render::ContentType;
use serde::de::{DeserializeOwned, Visitor};
use serde_json::{json, Map, Value};

use crate::inproc::InHub;
use crate::support::{fill, label, resources, Client};

// -------------------------------------------------------------- validator

/// Checks values against the document's schemas and remembers which
/// properties of which schema object were seen.
struct Check<'a> {
    doc: &'a Value,
    /// Undocumented fields are errors (answers); requests follow the
    /// schema's own `additionalProperties`.
    strict: bool,
    errors: Vec<String>,
    /// Schema object (by pointer) -> properties seen in values.
    seen: BTreeMap<String, BTreeSet<String>>,
}

fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "schema {name} missing");
    s
}

fn type_ok(v: &Value, ty: &str) -> bool {
    match ty {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other}"),
    }
}

impl<'a> Check<'a> {
    fn new(doc: &'a Value, strict: bool) -> Check<'a> {
        Check {
            doc,
            strict,
            errors: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    fn fail(&mut self, at: &str, what: String) {
        self.errors.push(format!("{at}: {what}"));
    }

    fn check(&mut self, v: &Value, schema: &Value, at: &str, ptr: &str) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap();
            let s = component(self.doc, name);
            return self.check(v, s, at, name);
        }
        if let Some(parts) = schema["allOf"].as_array() {
            let merged = merged(self.doc, parts);
            return self.check(v, &merged, at, ptr);
        }
        if let Some(alts) = schema["oneOf"].as_array() {
            let fits: Vec<usize> = (0..alts.len())
                .filter(|&i| {
                    let mut c = Check::new(self.doc, self.strict);
                    c.check(v, &alts[i], at, "");
                    c.errors.is_empty()
                })
                .collect();
            match fits.as_slice() {
                [i] => self.check(v, &alts[*i], at, &format!("{ptr}/oneOf/{i}")),
                _ => self.fail(at, format!("fits {} of oneOf, not one: {v}", fits.len())),
            }
            return;
        }
        if let Some(c) = schema.get("const") {
            if v != c {
                self.fail(at, format!("{v} is not the constant {c}"));
            }
        }
        match &schema["type"] {
            Value::String(t) if !type_ok(v, t) => {
                return self.fail(at, format!("{v} is not of type {t}"))
            }
            Value::Array(ts) if !ts.iter().any(|t| type_ok(v, t.as_str().unwrap())) => {
                return self.fail(at, format!("{v} is none of the types {ts:?}"))
            }
            _ => {}
        }
        if let Some(e) = schema["enum"].as_array() {
            if !e.contains(v) {
                self.fail(at, format!("{v} is not one of {e:?}"));
            }
        }
        if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), v.as_f64()) {
            if n < min {
                self.fail(at, format!("{n} < minimum {min}"));
            }
        }
        if let (Some(max), Some(n)) = (schema["maximum"].as_f64(), v.as_f64()) {
            if n > max {
                self.fail(at, format!("{n} > maximum {max}"));
            }
        }
        if let Some(items) = v.as_array() {
            let n = items.len() as u64;
            if schema["minItems"].as_u64().is_some_and(|m| n < m)
                || schema["maxItems"].as_u64().is_some_and(|m| n > m)
            {
                self.fail(at, format!("{n} items, outside minItems/maxItems"));
            }
            if schema.get("items").is_some() {
                for (i, item) in items.iter().enumerate() {
                    self.check(
                        item,
                        &schema["items"],
                        &format!("{at}[{i}]"),
                        &format!("{ptr}/items"),
                    );
                }
            }
        }
        if let Some(obj) = v.as_object() {
            self.object(obj, schema, at, ptr);
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, schema: &Value, at: &str, ptr: &str) {
        for r in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                self.fail(at, format!("required field {r} missing"));
            }
        }
        let props = schema["properties"].as_object();
        if props.is_some() {
            self.seen.entry(ptr.to_string()).or_default();
        }
        let closed = match schema.get("additionalProperties") {
            Some(Value::Bool(open)) => !open,
            Some(_) => false,
            None => self.strict && props.is_some(),
        };
        for (k, val) in obj {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(s) => {
                    self.seen.get_mut(ptr).unwrap().insert(k.clone());
                    self.check(val, s, &here, &format!("{ptr}/properties/{k}"));
                }
                None if closed => self.fail(&here, "not in the schema".into()),
                None => {
                    if let Some(s) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                        self.check(val, s, &here, &format!("{ptr}/additionalProperties"));
                    }
                }
            }
        }
    }

    /// Every property of every schema object a value went through was
    /// carried by some value.
    fn all_properties_seen(&mut self) {
        for (ptr, seen) in self.seen.clone() {
            let mut schema = pointer(self.doc, &ptr);
            if let Some(parts) = schema["allOf"].as_array() {
                schema = merged(self.doc, parts);
            }
            let props = schema["properties"].as_object().cloned();
            for p in props
                .unwrap_or_else(|| panic!("{ptr}: no properties"))
                .keys()
            {
                if !seen.contains(p) {
                    self.fail(&ptr, format!("property {p} is in no answer"));
                }
            }
        }
    }

    /// Fails with every mismatch, once each (array indexes dropped).
    fn assert_ok(&self) {
        let mut seen = BTreeSet::new();
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|e| {
                let mut out = String::new();
                let mut skip = false;
                for c in e.chars() {
                    match c {
                        '[' => skip = true,
                        ']' => skip = false,
                        c if !skip => out.push(c),
                        _ => {}
                    }
                }
                out
            })
            .filter(|e| seen.insert(e.clone()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} mismatches:\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
}

/// `allOf` as one object schema: the union of its parts' properties and
/// required fields.
fn merged(doc: &Value, parts: &[Value]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for part in parts {
        let part = match part["$ref"].as_str() {
            Some(r) => component(doc, r.rsplit('/').next().unwrap()),
            None => part,
        };
        if let Some(p) = part["properties"].as_object() {
            props.extend(p.clone());
        }
        if let Some(r) = part["required"].as_array() {
            required.extend(r.iter().cloned());
        }
    }
    json!({"type": "object", "properties": props, "required": required})
}

/// A schema by its pointer below `components/schemas` (`Name/properties/x`;
/// `$ref`s and `allOf`s on the way are followed).
fn pointer(doc: &Value, ptr: &str) -> Value {
    let mut parts = ptr.split('/');
    let mut s = component(doc, parts.next().unwrap()).clone();
    for p in parts {
        if let Some(all) = s["allOf"].as_array() {
            s = merged(doc, all);
        }
        s = match &s {
            Value::Array(a) => a[p.parse::<usize>().unwrap()].clone(),
            _ => s[p].clone(),
        };
        if let Some(r) = s["$ref"].as_str() {
            s = component(doc, r.rsplit('/').next().unwrap()).clone();
        }
    }
    s
}

// --------------------------------------------------------------- requests

/// The field names serde's derive gives a struct (what it would accept),
/// read by a deserializer that only answers `deserialize_struct`.
fn fields<T: DeserializeOwned>() -> Vec<&'static str> {
    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(serde::de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut out = None;
    let _ = T::deserialize(Probe(&mut out));
    out.expect("a struct").to_vec()
}

/// A value valid for `schema` with every property filled.
fn sample(doc: &Value, schema: &Value) -> Value {
    if let Some(r) = schema["$ref"].as_str() {
        return sample(doc, component(doc, r.rsplit('/').next().unwrap()));
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(e) = schema["enum"].as_array() {
        return e[0].clone();
    }
    let ty = match &schema["type"] {
        Value::Array(ts) => ts[0].as_str().unwrap(),
        t => t.as_str().unwrap_or("object"),
    };
    match ty {
        "string" => json!("x"),
        "integer" | "number" if schema["minimum"].is_number() => schema["minimum"].clone(),
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        "null" => Value::Null,
        "array" => json!([sample(doc, &schema["items"])]),
        _ => {
            let mut obj = Map::new();
            for (k, s) in schema["properties"].as_object().into_iter().flatten() {
                obj.insert(k.clone(), sample(doc, s));
            }
            Value::Object(obj)
        }
    }
}

/// `schema` (a pointer below `components/schemas`) describes `T` exactly.
fn request_schema<T: DeserializeOwned>(doc: &Value, ptr: &str, errors: &mut Vec<String>) {
    let schema = &pointer(doc, ptr);
    let props: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{ptr} has no properties"))
        .keys()
        .map(String::as_str)
        .collect();
    let known: BTreeSet<&str> = fields::<T>().into_iter().collect();
    if props != known {
        errors.push(format!(
            "{ptr}: schema properties {props:?}, struct fields {known:?}"
        ));
        return;
    }
    let full = sample(doc, schema);
    if let Err(e) = serde_json::from_value::<T>(full.clone()) {
        errors.push(format!("{ptr}: the schema's sample {full} is refused: {e}"));
        return;
    }
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap())
        .collect();
    for p in &props {
        let mut v = full.clone();
        v.as_object_mut().unwrap().remove(*p);
        let needed = serde_json::from_value::<T>(v).is_err();
        if needed != required.contains(p) {
            errors.push(format!(
                "{ptr}.{p}: the struct {} it, the schema {}",
                if needed { "needs" } else { "does not need" },
                if required.contains(p) {
                    "requires it"
                } else {
                    "does not"
                }
            ));
        }
    }
    let mut v = full.clone();
    v["zz_unknown"] = json!(1);
    let refused = serde_json::from_value::<T>(v).is_err();
    let closed = schema["additionalProperties"] == false;
    if refused != closed {
        errors.push(format!(
            "{ptr}: unknown fields are {} by the struct, the schema says additionalProperties {}",
            if refused { "refused" } else { "accepted" },
            schema["additionalProperties"]
        ));
    }
}

#[test]
fn request_schemas_match_their_serde_structs() {
    use labelhub::api::{admin, print};
    let doc = labelhub::api::openapi::document(&labelhub::api::routes());
    let mut errors = Vec::new();
    let e = &mut errors;
    request_schema::<print::PrintRequest>(&doc, "PrintRequest", e);
    request_schema::<print::ItemRequest>(&doc, "BatchItem", e);
    request_schema::<print::BatchRequest>(&doc, "BatchRequest", e);
    request_schema::<print::PreviewRequest>(&doc, "PreviewRequest", e);
    request_schema::<labelhub::hub::submit::PrintOptions>(&doc, "PrintOptions", e);
    request_schema::<admin::CreatePrinter>(&doc, "PrinterCreatePayload", e);
    request_schema::<admin::UpdatePrinter>(&doc, "PrinterUpdatePayload", e);
    request_schema::<admin::Connection>(&doc, "PrinterConnection", e);
    request_schema::<admin::Snmp>(&doc, "PrinterConnection/properties/snmp", e);
    request_schema::<admin::QueueSettings>(&doc, "PrinterCreatePayload/properties/queue", e);
    request_schema::<admin::QueueSettings>(&doc, "PrinterUpdatePayload/properties/queue", e);
    request_schema::<admin::CutDefaults>(&doc, "PrinterCreatePayload/properties/cut_defaults", e);
    request_schema::<admin::CutDefaults>(&doc, "PrinterUpdatePayload/properties/cut_defaults", e);
    request_schema::<labelhub::integrations::outbox::CreateRequest>(&doc, "SubscriptionCreate", e);
    request_schema::<labelhub::integrations::outbox::PatchRequest>(&doc, "SubscriptionPatch", e);
    request_schema::<labelhub::auth::admin::CreateRequest>(&doc, "ApiKeyCreate", e);
    request_schema::<labelhub::auth::admin::PatchRequest>(&doc, "ApiKeyPatch", e);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_enums_come_from_the_types() {
    let doc = labelhub::api::openapi::document(&labelhub::api::routes());
    let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(component(&doc, "JobState")["enum"], json!(states));
    assert_eq!(
        component(&doc, "ContentType")["enum"],
        json!(ContentType::NAMES)
    );
    // Every job state is counted in a batch's summary.
    let summary = &component(&doc, "BatchSummary")["properties"];
    for s in states {
        assert!(summary.get(s).is_some(), "BatchSummary lacks {s}");
    }
}

// -------------------------------------------------------------- responses

/// The documented success of an operation: status and JSON schema name.
fn documented(op: &Value) -> Option<(u16, String)> {
    let (code, resp) = op["responses"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(c, _)| *c != "default")?;
    let schema = resp["content"]["application/json"]["schema"]["$ref"].as_str()?;
    Some((
        code.parse().unwrap(),
        schema.rsplit('/').next().unwrap().to_string(),
    ))
}

/// A body each route takes (by its request schema).
fn body_for(schema: &str) -> Value {
    match schema {
        "PrintRequest" => label("spec"),
        "BatchRequest" => json!({"items": [label("spec"), label("spec")]}),
        "PreviewRequest" => json!({"content_type": "text_one_line", "data": {"primary_id": "x"}}),
        "PrinterCreatePayload" => json!({"name": "Spec", "slug": "spec", "model": "PT-P750W",
            "connection": {"uri": "emulator:?media=12&speed=instant"}}),
        "PrinterUpdatePayload" => json!({"name": "Renamed"}),
        "ApiKeyCreate" => json!({"name": "spec", "scopes": ["read"]}),
        "ApiKeyPatch" => json!({"notes": "spec"}),
        "SessionCreate" => json!({"key": "lh_pat_not-a-real-key"}),
        "ConnectionTest" => {
            json!({"model": "PT-P750W", "connection": {"uri": "emulator:?media=12"}})
        }
        "SubscriptionCreate" => json!({"url": "http://127.0.0.1:9/spec", "events": ["job.done"]}),
        "SubscriptionPatch" => json!({"description": "spec"}),
        "SpoolmanWebhookPayload" => json!({"spool_id": 7, "type": "updated"}),
        "GrocyWebhookPayload" => json!({"product_id": 3, "type": "stock_added"}),
        other => panic!("no body for schema {other}: add it here"),
    }
}

/// JSON routes this test does not reach, and why.
const NOT_REACHED: &[(&str, &str)] = &[
    // No app is configured in this process (tested in apps.rs).
    ("GET", "/api/lookup/{app}/{entity_id}"),
    ("POST", "/api/webhook/spoolman"),
    ("POST", "/api/webhook/grocy"),
    // A delivery needs an outbound webhook that was sent.
    (
        "POST",
        "/api/admin/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver",
    ),
];

#[test]
fn every_json_answer_and_every_job_state_fits_its_schema() {
    let hub = InHub::start();
    let doc = hub.get("/openapi.json").json();
    let mut check = Check::new(&doc, true);
    let printed = hub.post("/print", &label("spec")).json();
    let job = printed["job_id"].as_str().unwrap().to_string();
    let batch = printed["batch_id"].as_str().unwrap().to_string();
    hub.wait_batch(&batch, Duration::from_secs(30));
    let demo = hub.get("/api/printers/demo").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key_id = hub
        .post("/api/admin/api-keys", &body_for("ApiKeyCreate"))
        .json()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = hub
        .post("/api/admin/webhooks", &body_for("SubscriptionCreate"))
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    shapes_in_every_state(&hub, &job, &batch, &mut check);
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.to_ascii_uppercase(), template.clone(), op.clone()));
        }
    }
    // Destructive routes last: disable, enable again, delete.
    ops.sort_by_key(|(m, p, _)| {
        let last = match () {
            _ if m == "DELETE" => 3,
            _ if p.ends_with("/enable") => 2,
            _ if p.ends_with("/disable") => 1,
            _ => 0,
        };
        (last, p.clone(), m.clone())
    });
    // Jobs wait on a paused printer, so each job route finds one in the
    // state it acts on.
    hub.post(
        "/api/v1/admin/printers",
        &json!({"name": "Held", "slug": "held",
        "model": "PT-P750W", "connection": {"uri": "emulator:?media=12&speed=instant"}}),
    );
    assert_eq!(hub.post_empty("/api/printers/held/pause").status, 204);
    let held = || {
        let mut body = label("held");
        body["printer"] = json!("held");
        let r = hub.post("/print", &body);
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()["job_id"].as_str().unwrap().to_string()
    };
    let mut unreached = BTreeMap::new();
    for (method, template, op) in &ops {
        let Some((status, schema)) = documented(op) else {
            continue;
        };
        let job = match template.as_str() {
            "/api/jobs/{job_id}/cancel" | "/api/jobs/{job_id}/pause" => held(),
            "/api/jobs/{job_id}/resume" | "/jobs/{job_id}/resume" => {
                let j = held();
                assert_eq!(hub.post_empty(&format!("/api/jobs/{j}/pause")).status, 200);
                j
            }
            "/printer/resume" => {
                assert_eq!(hub.post_empty("/api/printers/demo/pause").status, 204);
                job.clone()
            }
            _ => job.clone(),
        };
        let mut values = resources(&demo, "demo", &job, &batch, &key_id).to_vec();
        values.push(("subscription_id", &sub));
        let path = fill(template, &values);
        let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(|r| match r.rsplit('/').next().unwrap() {
                "SessionCreate" => json!({"key": hub.key}).to_string(),
                name => body_for(name).to_string(),
            });
        let r = hub.request(method, &path, body.as_deref().map(str::as_bytes), &[]);
        if r.status != status {
            let text = String::from_utf8_lossy(&r.bytes).into_owned();
            unreached.insert((method.clone(), template.clone()), (r.status, text));
            continue;
        }
        check.check(
            &r.json(),
            &json!({"$ref": format!("#/components/schemas/{schema}")}),
            &format!("{method} {template}"),
            &schema,
        );
    }
    let expected: BTreeSet<(String, String)> = NOT_REACHED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let got: BTreeSet<(String, String)> = unreached.keys().cloned().collect();
    assert_eq!(
        got, expected,
        "routes not answered with their documented success: {unreached:#?}"
    );
    // A connection test that fails (loopback refuses the SNMP request).
    let failed = hub.post(
        "/api/v1/admin/connection-test",
        &json!({"model": "PT-P750W", "connection": {"uri": "tcp://127.0.0.1:9"}}),
    );
    assert_eq!(failed.status, 200);
    let schema = json!({"$ref": "#/components/schemas/ConnectionTestResult"});
    check.check(
        &failed.json(),
        &schema,
        "failed connection test",
        "ConnectionTestResult",
    );
    check.all_properties_seen();
    check.assert_ok();
}

/// The response shapes of a real job, batch and printer in every job state,
/// with each optional field absent and present.
fn shapes_in_every_state(hub: &InHub, job: &str, batch: &str, check: &mut Check<'_>) {
    use labelhub::api::shapes;
    use labelhub::hub::{jobs, printers, registry::LiveState};
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let conn = hub.hub.db.read();
    let base = jobs::get(&conn, job).unwrap();
    let mut all = Vec::new();
    let mut legacy = BTreeSet::new();
    for state in JobState::ALL {
        for filled in [false, true] {
            let mut j = base.clone();
            j.state = state;
            let some = |s: &str| filled.then(|| s.to_string());
            j.error = some("no tape");
            j.error_code = some("media_empty");
            j.error_detail = filled.then(|| json!({"media": "12"}));
            j.retry_of = some("an-earlier-job");
            j.api_key_id = some("a-key");
            j.source_ip = some("192.0.2.1");
            j.started_at = filled.then_some(j.created_at);
            j.finished_at = filled.then_some(j.created_at);
            let at = format!(
                "job {} {}",
                state.as_str(),
                if filled { "filled" } else { "empty" }
            );
            check.check(&shapes::job(&j), &schema("JobRead"), &at, "JobRead");
            check.check(
                &shapes::legacy_job(&j),
                &schema("PrintJobStatusResponse"),
                &at,
                "PrintJobStatusResponse",
            );
            legacy.insert(shapes::legacy_job(&j)["status"].to_string());
            all.push(j);
        }
    }
    // Upstream's vocabulary on the legacy route: every word is used.
    let words = &pointer(check.doc, "PrintJobStatusResponse/properties/status")["enum"];
    let words: BTreeSet<String> = words
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(legacy, words, "the legacy status words");
    let snap = jobs::BatchSnapshot {
        batch: jobs::batch(&conn, batch).unwrap(),
        jobs: all,
    };
    check.check(
        &shapes::batch(&snap),
        &schema("BatchRead"),
        "batch in every state",
        "BatchRead",
    );
    let base = printers::get(&conn, "demo").unwrap();
    let live = LiveState {
        online: Some(true),
        storage_error: Some("disk full".into()),
        ..LiveState::default()
    };
    for filled in [false, true] {
        let mut p = base.clone();
        let some = |s: &str| filled.then(|| s.to_string());
        p.paused = filled;
        p.paused_reason = some("media_mismatch");
        p.paused_detail = some("wants 12 mm");
        p.media = some("12");
        p.seen_media = some("12");
        let at = format!("printer {}", if filled { "filled" } else { "empty" });
        let live = filled.then_some(&live);
        check.check(
            &shapes::printer(&p, live, Some(filled)),
            &schema("PrinterRead"),
            &at,
            "PrinterRead",
        );
        check.check(
            &shapes::admin_printer(&p),
            &schema("AdminPrinterRead"),
            &at,
            "AdminPrinterRead",
        );
    }
}
