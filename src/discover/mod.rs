//! Printer discovery: what is plugged in or on the network, mapped to the
//! model table, each result carrying the body that adds it as a printer.
//!
//! * [`usb`]: USB printers from sysfs (`/sys/class/usbmisc/lp*`: the IEEE
//!   1284 device id and the USB ids of the device), Brother devices in
//!   mass-storage mode (P-Lite / Editor Lite) and Brother printers that
//!   have no `/dev/usb/lp*` (usblp not bound), both with the fix in words.
//!   Reads files under a root directory (`/` in production, a fake tree in
//!   tests).
//! * [`net`]: an SNMP sweep of an IPv4 CIDR (sysDescr, Brother's device id
//!   and status block), bounded in hosts, rate and total time.
//! * [`auto`]: `PRINTER_HUB_AUTO_ADD_USB=1`: a thread that adds a newly
//!   plugged, supported USB printer by itself.
//!
//! `cli::discover` and `GET /api/v1/admin/discover` print the same
//! [`Found`] records. Layering: `discover` reads sysfs and speaks SNMP
//! through `brother::snmp`; only [`auto`] touches the hub.

pub mod auto;
pub mod net;
pub mod usb;

use serde::Serialize;
use serde_json::{json, Value};

use crate::brother::model::{self, Model};

/// One discovered device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// `usb`, `usb_mass_storage`, `usb_no_driver` or `network`.
    pub kind: &'static str,
    /// Our model name when the device maps to the model table.
    pub model: Option<String>,
    /// What the device calls itself (IEEE 1284 `MDL`, USB product, sysDescr).
    pub reported: Option<String>,
    /// Whether labelhub can print to it as it is.
    pub supported: bool,
    pub serial: Option<String>,
    /// `/dev/usb/lp0`, the stable symlink, or an IP address.
    pub address: String,
    /// `04f9:2062` for USB devices.
    pub usb_id: Option<String>,
    /// The connection URI to configure (`usb://...`, `tcp://host:9100`).
    pub uri: Option<String>,
    /// The loaded medium the printer reported (network status block).
    pub media: Option<String>,
    /// What is wrong, when it cannot be added as it is.
    pub problem: Option<String>,
    /// What to do about it, in words.
    pub fix: Option<String>,
    /// The body of `POST /api/v1/admin/printers` that adds it (supported
    /// devices only): one call.
    pub add: Option<Value>,
    /// Slug of a configured printer that already uses this device.
    pub configured_as: Option<String>,
}

impl Found {
    pub(crate) fn new(kind: &'static str, address: String) -> Found {
        Found {
            kind,
            model: None,
            reported: None,
            supported: false,
            serial: None,
            address,
            usb_id: None,
            uri: None,
            media: None,
            problem: None,
            fix: None,
            add: None,
            configured_as: None,
        }
    }

    /// Fills `add` for a supported device with a model and a URI.
    pub(crate) fn complete(&mut self) {
        self.add = None;
        if !self.supported {
            return;
        }
        let (Some(m), Some(uri)) = (self.model.as_deref(), self.uri.as_deref()) else {
            return;
        };
        let slug = suggest_slug(m, self.serial.as_deref(), &self.address);
        let mut body = json!({
            "name": suggest_name(m, self.serial.as_deref(), &self.address),
            "slug": slug,
            "model": m,
            "connection": {"uri": uri},
        });
        if let Some(media) = &self.media {
            body["media"] = json!(media);
        }
        self.add = Some(body);
    }

    /// Marks the record as already configured (no `add` then).
    pub fn mark_configured(&mut self, slug: &str) {
        self.configured_as = Some(slug.to_string());
        self.add = None;
    }
}

/// The model for a name a device reports (`QL-820NWB`, `Brother QL-820NWB`,
/// `PT-P750W (labelhub emulator)`): the longest model name it contains.
pub fn model_in(text: &str) -> Option<&'static Model> {
    if let Some(m) = model::by_name(text.trim()) {
        return Some(m);
    }
    let upper = text.to_ascii_uppercase();
    model::all()
        .iter()
        .filter(|m| {
            let name = m.name.to_ascii_uppercase();
            upper.match_indices(&name).any(|(i, _)| {
                // Whole word: `QL-800` must not match inside `QL-8000`.
                let after = upper.as_bytes().get(i + name.len());
                !matches!(after, Some(b) if b.is_ascii_alphanumeric())
            })
        })
        .max_by_key(|m| m.name.len())
}

/// Lower-case `a-z0-9-` only.
fn slug_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// `ql-820nwb-a1b2c3` (serial tail) or `pt-p750w-127-0-0-2` (address);
/// at most 64 characters, as the admin API requires.
pub fn suggest_slug(model: &str, serial: Option<&str>, address: &str) -> String {
    let tail = match serial.map(slug_part).filter(|s| !s.is_empty()) {
        Some(s) => s
            .chars()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
        None => slug_part(address.rsplit('/').next().unwrap_or(address)),
    };
    let mut slug = format!("{}-{}", slug_part(model), tail);
    slug.truncate(64);
    slug.trim_end_matches('-').to_string()
}

fn suggest_name(model: &str, serial: Option<&str>, address: &str) -> String {
    match serial {
        Some(s) if !s.is_empty() => format!("{model} {s}"),
        _ => format!("{model} at {address}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn model_names_are_found_inside_descriptions_as_whole_words() {
        assert_eq!(model_in("QL-820NWB").unwrap().name, "QL-820NWB");
        assert_eq!(
            model_in("Brother PT-P750W (labelhub emulator)")
                .unwrap()
                .name,
            "PT-P750W"
        );
        assert_eq!(model_in("brother ql-1110nwb").unwrap().name, "QL-1110NWB");
        assert!(model_in("Brother HL-L2350DW").is_none());
        assert!(model_in("QL-8000").is_none());
    }

    #[test]
    fn slugs_fit_the_admin_rules() {
        assert_eq!(
            suggest_slug("QL-820NWB", Some("000G1Z123456"), "/dev/usb/lp0"),
            "ql-820nwb-1z123456"
        );
        assert_eq!(
            suggest_slug("PT-P750W", None, "127.0.0.2"),
            "pt-p750w-127-0-0-2"
        );
        assert_eq!(
            suggest_slug("PT-P750W", Some("__"), "/dev/usb/lp3"),
            "pt-p750w-lp3"
        );
        let long = suggest_slug("QL-820NWB", Some(&"x".repeat(200)), "a");
        assert!(long.len() <= 64);
    }
}
