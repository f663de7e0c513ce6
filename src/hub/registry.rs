//! The printer thread registry: one thread per enabled printer, started,
//! restarted and stopped while the hub runs.
//!
//! **Invariants.**
//! * At most one thread per printer. [`Registry::apply`] stops the old thread
//!   (it finishes the label it is sending) before starting a new one, which
//!   reloads its queue from the database.
//! * The registry lock is never held while joining a thread or while holding
//!   the database lock, so a stopping printer can still record its progress.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::live::{Live, Msg};
use super::printers::{self, Printer};
use super::{Hub, HubError};

/// What [`Registry::live`] returns.
pub use super::live::LiveState;

struct Handle {
    // Drop order: the sender first, so a dropped handle closes the channel.
    sender: Sender<Msg>,
    done: Receiver<()>,
    thread: JoinHandle<()>,
    live: Arc<Live>,
    /// The hub the thread runs on (the thread holds it too), to restart
    /// the thread if it died.
    hub: Arc<Hub>,
}

/// All printer threads.
#[derive(Default)]
pub struct Registry {
    handles: Mutex<HashMap<String, Handle>>,
    stopping: AtomicBool,
    /// Printers whose thread is being replaced: a hand-off meanwhile is
    /// fine, the new thread reloads its queue once it is registered.
    restarting: Mutex<std::collections::HashSet<String>>,
}

impl Registry {
    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts job ids on a printer's channel. A thread that died (it should
    /// not: every step is guarded) is restarted first, from the database.
    pub fn hand_off(&self, printer_id: &str, ids: &[String]) -> Result<(), String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err("the hub is shutting down".into());
        }
        let dead = self
            .handles()
            .get(printer_id)
            .filter(|h| h.thread.is_finished())
            .map(|h| h.hub.clone());
        if let Some(hub) = dead {
            log::error!("printer thread {printer_id} had exited; restarting it");
            let printer = printers::get(&hub.db.read(), printer_id);
            let restarted = printer.map(|p| self.start(&hub, &p));
            if !matches!(restarted, Ok(Ok(()))) {
                return Err("the printer thread has exited and could not be restarted".into());
            }
        }
        let handles = self.handles();
        let Some(handle) = handles.get(printer_id) else {
            if self.is_restarting(printer_id) {
                return Ok(());
            }
            return Err("the printer has no running thread (disabled or failed to start)".into());
        };
        handle
            .sender
            .send(Msg::Jobs(ids.to_vec()))
            .map_err(|_| "the printer thread's channel is closed".to_string())
    }

    /// Ends a printer's thread but keeps its handle, as if it had died.
    #[cfg(test)]
    pub(crate) fn end_thread_for_test(&self, printer_id: &str) {
        let handles = self.handles();
        if let Some(h) = handles.get(printer_id) {
            let _ = h.sender.send(Msg::Stop);
            let _ = h.done.recv_timeout(Duration::from_secs(10));
            // `done` closes as the thread's locals drop, just before the
            // thread counts as finished.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !h.thread.is_finished() && Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
    }

    /// Tells a printer thread to re-read its row (after pause/resume).
    pub fn wake(&self, printer_id: &str) {
        if let Some(h) = self.handles().get(printer_id) {
            let _ = h.sender.send(Msg::Wake);
        }
    }

    /// `None`: no thread; `Some(false)`: the thread exited.
    pub fn alive(&self, printer_id: &str) -> Option<bool> {
        self.handles()
            .get(printer_id)
            .map(|h| !h.thread.is_finished())
    }

    /// What the printer's thread last saw.
    pub fn live(&self, printer_id: &str) -> Option<LiveState> {
        self.handles().get(printer_id).map(|h| h.live.get())
    }

    /// Ids of printers with a thread.
    pub fn running(&self) -> Vec<String> {
        self.handles().keys().cloned().collect()
    }

    fn is_restarting(&self, printer_id: &str) -> bool {
        self.restarting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(printer_id)
    }

    fn set_restarting(&self, printer_id: &str, on: bool) {
        let mut set = self.restarting.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            set.insert(printer_id.to_string());
        } else {
            set.remove(printer_id);
        }
    }

    /// Starts the printer's thread (stopping an old one first). Jobs handed
    /// off while the thread is replaced are picked up from the database.
    pub fn start(&self, hub: &Arc<Hub>, printer: &Printer) -> Result<(), HubError> {
        self.set_restarting(&printer.id, true);
        let res = self.replace(hub, printer);
        self.set_restarting(&printer.id, false);
        // Whatever was committed while no thread was registered.
        self.wake(&printer.id);
        res
    }

    fn replace(&self, hub: &Arc<Hub>, printer: &Printer) -> Result<(), HubError> {
        self.stop(&printer.id, hub.config.shutdown_timeout);
        if self.stopping.load(Ordering::SeqCst) {
            return Err(HubError::ShuttingDown);
        }
        // Its thread is not running: anything still `printing` was cut off.
        if let Err(e) = super::recovery::recover_printer(hub, printer) {
            log::error!("recovery of printer {}: {e}", printer.slug);
        }
        let (sender, receiver) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded(0);
        let live = Arc::new(Live::default());
        let thread = super::worker::spawn(
            hub.clone(),
            printer.clone(),
            receiver,
            live.clone(),
            done_tx,
        )
        .map_err(|error| HubError::Io {
            context: format!("starting the thread of printer {}", printer.slug),
            error,
        })?;
        log::info!(
            "printer {} ({}, {}) started",
            printer.slug,
            printer.model,
            printer.shown_uri()
        );
        self.handles().insert(
            printer.id.clone(),
            Handle {
                sender,
                done,
                thread,
                live,
                hub: hub.clone(),
            },
        );
        Ok(())
    }

    /// Stops a printer's thread; waits up to `timeout` for it to finish the
    /// label in flight. Returns `false` if it did not stop in time.
    pub fn stop(&self, printer_id: &str, timeout: Duration) -> bool {
        let Some(handle) = self.handles().remove(printer_id) else {
            return true;
        };
        stop_handle(printer_id, handle, Instant::now() + timeout)
    }

    /// Makes the thread match the row after an admin change: restarted when
    /// enabled, stopped when disabled.
    pub fn apply(&self, hub: &Arc<Hub>, printer: &Printer) -> Result<(), HubError> {
        if printer.enabled {
            self.start(hub, printer)
        } else {
            self.stop(&printer.id, hub.config.shutdown_timeout);
            log::info!("printer {} stopped (disabled)", printer.slug);
            Ok(())
        }
    }

    /// Stops every thread (shutdown). Returns the printers that did not stop
    /// within `timeout`.
    pub fn stop_all(&self, timeout: Duration) -> Vec<String> {
        self.stopping.store(true, Ordering::SeqCst);
        let handles: Vec<(String, Handle)> = self.handles().drain().collect();
        for (_, h) in &handles {
            let _ = h.sender.send(Msg::Stop);
        }
        let deadline = Instant::now() + timeout;
        handles
            .into_iter()
            .filter_map(|(id, h)| (!stop_handle(&id, h, deadline)).then_some(id))
            .collect()
    }
}

fn stop_handle(printer_id: &str, handle: Handle, deadline: Instant) -> bool {
    let _ = handle.sender.send(Msg::Stop);
    let wait = deadline.saturating_duration_since(Instant::now());
    match handle.done.recv_timeout(wait) {
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
            log::error!("printer thread {printer_id} did not stop in time; leaving it");
            false
        }
        _ => {
            if handle.thread.join().is_err() {
                log::error!("printer thread {printer_id} panicked");
            }
            true
        }
    }
}

/// Starts a thread for every enabled printer. A printer that cannot start
/// is logged and skipped: one broken printer never stops the others.
pub fn start_all(hub: &Arc<Hub>) -> Result<(), HubError> {
    let list = printers::list(&hub.db.read(), false)?;
    for printer in list {
        if let Err(e) = hub.threads.start(hub, &printer) {
            log::error!("printer {} not started: {e}", printer.slug);
        }
    }
    Ok(())
}
