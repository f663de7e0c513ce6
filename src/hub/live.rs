//! What passes between the registry and a printer thread: the messages on
//! the thread's channel ([`Msg`]) and what the thread last saw ([`Live`]).
//! A leaf: `registry` starts `worker` threads, and both use this.

use std::sync::Mutex;

/// Messages to a printer thread.
#[derive(Debug, Clone)]
pub enum Msg {
    /// New jobs to print (ids, in order). Duplicates are harmless: a job is
    /// claimed with a guarded `queued -> printing` transition.
    Jobs(Vec<String>),
    /// Re-read the printer row (pause/resume) and the queue.
    Wake,
    /// Finish the label in flight and exit.
    Stop,
}

/// What a printer thread last saw, for status and readiness.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// `None` before the first status poll.
    pub online: Option<bool>,
    pub problem: Option<String>,
    pub media: Option<String>,
    /// When the last poll happened (ms since epoch).
    pub polled_at: Option<i64>,
    pub last_error: Option<String>,
    /// The job being sent, if any.
    pub current_job: Option<String>,
    /// Jobs waiting in the thread's queue.
    pub pending: usize,
    /// Set while the thread holds its queue because a write failed
    /// (`<error_code>: <message>`); cleared when the retried write succeeds.
    pub storage_error: Option<String>,
}

/// Shared between a printer thread and the registry.
#[derive(Debug, Default)]
pub struct Live {
    pub state: Mutex<LiveState>,
}

impl Live {
    pub fn get(&self) -> LiveState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut LiveState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }
}
