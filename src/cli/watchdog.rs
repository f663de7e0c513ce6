//! systemd integration of `serve`: `READY=1` once the hub listens,
//! `WATCHDOG=1` while it is healthy, `STOPPING=1` on shutdown (the packaged
//! unit is `Type=notify` with `WatchdogSec=`). Without `NOTIFY_SOCKET` (not
//! under systemd) every call is a no-op.
//!
//! Health, checked before every ping: the one writing connection can be
//! locked and answers `SELECT 1`. A wedged writer (the hub's single point
//! of serialisation) blocks this thread inside the check, the pings stop,
//! and systemd restarts the service after `WatchdogSec`. Pings go out at
//! half the interval systemd asks for.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use sd_notify::NotifyState;

use crate::hub::Hub;

/// The watchdog thread (`sd-watchdog`), when systemd asked for one.
pub struct Watchdog {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

/// Tells systemd the hub is ready and starts the watchdog thread if
/// `WATCHDOG_USEC` asks for one.
pub fn ready(hub: &Arc<Hub>, listening: &str) -> Option<Watchdog> {
    let status = format!("listening on {listening}");
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]) {
        log::warn!("could not notify systemd that the hub is ready: {e}");
    }
    let interval = sd_notify::watchdog_enabled()?;
    let every = (interval / 2).max(Duration::from_millis(50));
    let (stop, rx) = crossbeam_channel::bounded::<()>(1);
    let hub = hub.clone();
    let handle = std::thread::Builder::new()
        .name("sd-watchdog".into())
        .spawn(move || loop {
            if healthy(&hub) {
                if let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
                    log::warn!("watchdog ping failed: {e}");
                }
            } else {
                log::error!("watchdog: the database does not answer; not pinging systemd");
            }
            match rx.recv_timeout(every) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        })
        .map_err(|e| log::error!("cannot start the watchdog thread: {e}"))
        .ok()?;
    log::info!(
        "systemd watchdog on: pinging every {} ms",
        every.as_millis()
    );
    Some(Watchdog { stop, handle })
}

fn healthy(hub: &Hub) -> bool {
    let conn = hub.db.writer();
    conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
        .is_ok()
}

/// `STOPPING=1`, then ends the watchdog thread.
pub fn stopping(watchdog: Option<Watchdog>) {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    if let Some(w) = watchdog {
        let _ = w.stop.send(());
        let _ = w.handle.join();
    }
}
