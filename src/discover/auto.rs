//! `PRINTER_HUB_AUTO_ADD_USB=1`: a thread (`usb-auto-add`) that scans
//! sysfs every [`INTERVAL`] and adds each supported Brother USB printer no
//! configured printer uses yet, with the body discovery suggests. A device
//! it could not add (slug or name taken) is logged once and not retried
//! until the hub restarts, so a conflict does not spam the log.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{usb, Found};
use crate::hub::printers::{self, NewPrinter, Printer};
use crate::hub::{control, Hub};

/// How often sysfs is scanned.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Who the audit log names for printers added this way.
pub const ADDED_BY: &str = "auto-add-usb";

/// The running thread; [`AutoAdd::stop`] ends it.
pub struct AutoAdd {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl AutoAdd {
    /// Starts the thread (its first scan runs at once).
    pub fn spawn(hub: Arc<Hub>, root: PathBuf) -> std::io::Result<AutoAdd> {
        let (stop, rx) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name("usb-auto-add".into())
            .spawn(move || run(&hub, &root, &rx))?;
        Ok(AutoAdd { stop, handle })
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

fn run(hub: &Arc<Hub>, root: &std::path::Path, stop: &Receiver<()>) {
    log::info!(
        "USB auto-add on: scanning {} every {} s",
        root.join("sys/class/usbmisc").display(),
        INTERVAL.as_secs()
    );
    let mut given_up: HashSet<String> = HashSet::new();
    loop {
        // A panic in one pass must not end the thread.
        let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            add_new(hub, root, &mut given_up)
        }));
        if pass.is_err() {
            log::error!(
                "USB auto-add: a scan panicked; trying again in {} s",
                INTERVAL.as_secs()
            );
        }
        match stop.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// The slug of a configured printer that uses the device `f` (same URI,
/// or the same serial in its URI).
pub fn configured_as<'a>(f: &Found, configured: &'a [Printer]) -> Option<&'a Printer> {
    configured.iter().find(|p| {
        Some(p.uri.as_str()) == f.uri.as_deref()
            || f.serial
                .as_deref()
                .is_some_and(|s| s.len() >= 4 && p.uri.starts_with("usb://") && p.uri.contains(s))
    })
}

/// One pass: returns the printers it added.
pub fn add_new(
    hub: &Arc<Hub>,
    root: &std::path::Path,
    given_up: &mut HashSet<String>,
) -> Vec<Printer> {
    let mut added = Vec::new();
    let found = usb::scan(root);
    if found.iter().all(|f| f.add.is_none()) {
        return added;
    }
    let configured = match printers::list(&hub.db.read(), true) {
        Ok(list) => list,
        Err(e) => {
            log::warn!("USB auto-add: cannot read the printers: {e}");
            return added;
        }
    };
    for f in found {
        let (Some(uri), Some(model), true) = (f.uri.clone(), f.model.clone(), f.supported) else {
            continue;
        };
        if configured_as(&f, &configured).is_some() || given_up.contains(&uri) {
            continue;
        }
        let Some(body) = &f.add else { continue };
        // The same checks as POST /api/v1/admin/printers.
        let checked = hub
            .devices
            .validate_uri(&uri)
            .map_err(|e| e.message)
            .and_then(|()| {
                crate::brother::transport::parse_uri(&uri)
                    .and_then(|ep| {
                        crate::brother::transport::check_reach(&uri, &ep, &hub.config.reach())
                    })
                    .map_err(|e| e.to_string())
            });
        if let Err(why) = checked {
            log::warn!("USB auto-add: not adding {uri}: {why} (not retried until restart)");
            given_up.insert(uri);
            continue;
        }
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        let new = NewPrinter {
            slug: text("slug"),
            name: text("name"),
            model,
            uri: uri.clone(),
            media: None,
            half_cut: false,
            auto_cut: true,
            auto_resume: true,
            queue_timeout_s: 30,
            enabled: true,
            snmp_community: None,
            max_length_mm: crate::hub::printers::DEFAULT_MAX_LENGTH_MM,
        };
        let res = hub
            .write(|w| printers::create(w, &new, ADDED_BY))
            .and_then(|p| control::apply_printer(hub, &p).map(|()| p));
        match res {
            Ok(p) => {
                log::info!(
                    "USB auto-add: added printer {} ({}, {})",
                    p.slug,
                    p.model,
                    p.uri
                );
                added.push(p);
            }
            Err(e) => {
                log::warn!(
                    "USB auto-add: could not add {} at {uri}: {e}; add it with \
                     POST /api/v1/admin/printers (not retried until restart)",
                    new.model
                );
                given_up.insert(uri);
            }
        }
    }
    added
}
