//! Long-poll parking: requests waiting for a change, without a thread each.
//!
//! A parked entry holds the tiny_http request (the open connection) and the
//! parsed [`Request`]; it costs a few hundred bytes plus its body. A change
//! notification or the deadline moves it back to the handler pool (its
//! resume channel, and the doorbell wakes a handler thread), where the
//! handler runs again and either answers or parks it again.
//!
//! **Invariant (no lost wake-ups):** a handler reads its snapshot and the
//! newest event id (`seen`) together; [`Parking::park`] compares `seen` with
//! the newest id already notified, under the same lock that
//! [`Parking::notify`] takes, and re-queues at once if a change slipped in
//! between.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::{Request, Wake};

/// A request taken off a handler thread.
pub struct Parked {
    pub raw: tiny_http::Request,
    pub req: Request,
}

/// Work for the handler pool that comes back from parking.
pub struct Resumed {
    pub raw: tiny_http::Request,
    pub req: Request,
}

struct Entry {
    parked: Parked,
    keys: Vec<String>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<u64, Entry>,
    by_key: HashMap<String, Vec<u64>>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Newest event id notified so far.
    last_seq: i64,
    next_id: u64,
    closed: bool,
}

/// The registry of parked requests.
pub struct Parking {
    inner: Mutex<Inner>,
    timer: Condvar,
    resume: Sender<Resumed>,
    /// The other end of `resume`: the server's handler pool reads it.
    resumed: Receiver<Resumed>,
    /// Rung after each re-queued request, to wake a handler thread that
    /// waits for requests elsewhere ([`Parking::with_doorbell`]).
    doorbell: Option<Doorbell>,
    max: usize,
}

/// See [`Parking::with_doorbell`].
pub type Doorbell = Box<dyn Fn() + Send + Sync>;

/// Why a request could not be parked; it must be answered now.
pub enum Refused {
    /// Too many waiters (or parking disabled): answer with the snapshot.
    Full(Box<Parked>),
    /// A change arrived meanwhile; it was re-queued.
    Requeued,
}

impl Parking {
    /// At most `max` parked requests. Made before the hub opens, so it is
    /// told of every commit (the newest event id notified starts at 0).
    pub fn new(max: usize) -> Parking {
        let (resume, resumed) = crossbeam_channel::unbounded();
        Parking {
            inner: Mutex::new(Inner::default()),
            timer: Condvar::new(),
            resume,
            resumed,
            doorbell: None,
            max,
        }
    }

    /// Requests that come back from parking, for the handler pool.
    pub fn resumed(&self) -> &Receiver<Resumed> {
        &self.resumed
    }

    /// Rings `doorbell` after each request sent back to the handler pool
    /// (the pool's threads wait on tiny_http's queue, not on the resume
    /// channel: `http::server::Bound::doorbell` unblocks one of them). The
    /// server is bound before the parking is made, so it is given here.
    pub fn with_doorbell(mut self, doorbell: Doorbell) -> Parking {
        self.doorbell = Some(doorbell);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of parked requests.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parks `parked` until one of `keys` changes after event `seen` or its
    /// deadline passes.
    pub fn park(
        &self,
        mut parked: Parked,
        keys: Vec<String>,
        seen: i64,
        deadline: Instant,
    ) -> Result<(), Refused> {
        let mut inner = self.lock();
        if inner.closed || inner.entries.len() >= self.max {
            return Err(Refused::Full(Box::new(parked)));
        }
        parked.req.deadline = Some(deadline);
        if inner.last_seq > seen {
            drop(inner);
            self.requeue(parked, Wake::Changed);
            return Err(Refused::Requeued);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        for key in &keys {
            inner.by_key.entry(key.clone()).or_default().push(id);
        }
        let earliest = inner.deadlines.peek().map(|Reverse((t, _))| *t);
        inner.deadlines.push(Reverse((deadline, id)));
        inner.entries.insert(id, Entry { parked, keys });
        if earliest.is_none_or(|t| deadline < t) {
            self.timer.notify_one();
        }
        Ok(())
    }

    fn requeue(&self, parked: Parked, wake: Wake) {
        let mut req = parked.req;
        req.wake = wake;
        // The pool's resume channel is unbounded and lives as long as the
        // server; a send error means the pool is gone and the connection
        // is dropped with the request.
        let _ = self.resume.send(Resumed {
            raw: parked.raw,
            req,
        });
        if let Some(ring) = &self.doorbell {
            ring();
        }
    }

    fn take(inner: &mut Inner, id: u64) -> Option<Entry> {
        let entry = inner.entries.remove(&id)?;
        for key in &entry.keys {
            if let Some(ids) = inner.by_key.get_mut(key) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    inner.by_key.remove(key);
                }
            }
        }
        Some(entry)
    }

    /// Wakes the requests waiting on any of `keys`; `seq` is the newest
    /// event id of the change.
    pub fn notify(&self, keys: &[String], seq: i64) {
        let mut woken = Vec::new();
        {
            let mut inner = self.lock();
            inner.last_seq = inner.last_seq.max(seq);
            for key in keys {
                let ids = inner.by_key.get(key).cloned().unwrap_or_default();
                for id in ids {
                    if let Some(entry) = Parking::take(&mut inner, id) {
                        woken.push(entry.parked);
                    }
                }
            }
        }
        for parked in woken {
            self.requeue(parked, Wake::Changed);
        }
    }

    /// The timer loop: re-queues requests whose deadline passed. Runs on
    /// its own thread until [`Parking::close`].
    pub fn run_timer(&self) {
        let mut inner = self.lock();
        loop {
            if inner.closed {
                return;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(Reverse((t, id))) = inner.deadlines.peek().copied() {
                if t > now {
                    break;
                }
                inner.deadlines.pop();
                if let Some(entry) = Parking::take(&mut inner, id) {
                    due.push(entry.parked);
                }
            }
            if !due.is_empty() {
                drop(inner);
                for parked in due {
                    self.requeue(parked, Wake::Deadline);
                }
                inner = self.lock();
                continue;
            }
            inner = match inner.deadlines.peek().map(|Reverse((t, _))| *t) {
                Some(t) => {
                    let wait = t.saturating_duration_since(now);
                    self.timer
                        .wait_timeout(inner, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.timer.wait(inner).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Stops parking: every parked request is re-queued to answer now, and
    /// the timer thread ends.
    pub fn close(&self) {
        let all: Vec<Parked> = {
            let mut inner = self.lock();
            inner.closed = true;
            let ids: Vec<u64> = inner.entries.keys().copied().collect();
            ids.into_iter()
                .filter_map(|id| Parking::take(&mut inner, id).map(|e| e.parked))
                .collect()
        };
        self.timer.notify_all();
        for parked in all {
            self.requeue(parked, Wake::Deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parked(path: &str) -> Parked {
        let raw: tiny_http::Request = tiny_http::TestRequest::new().with_path(path).into();
        let req = Request {
            method: "GET".into(),
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            peer: None,
            params: Default::default(),
            principal: None,
            wake: Wake::Fresh,
            deadline: None,
            route: 0,
            template: "",
            scope: crate::http::Scope::Read,
            policy: crate::http::Policy::NONE,
            received: Instant::now(),
        };
        Parked { raw, req }
    }

    #[test]
    fn notify_wakes_only_matching_keys_and_a_late_park_is_requeued() {
        let parking = Parking::new(10);
        let rx = parking.resumed().clone();
        let far = Instant::now() + Duration::from_secs(60);
        assert!(parking
            .park(parked("/a"), vec!["job:a".into()], 5, far)
            .is_ok());
        assert!(parking
            .park(parked("/b"), vec!["job:b".into()], 5, far)
            .is_ok());
        assert_eq!(parking.len(), 2);
        parking.notify(&["job:a".into()], 6);
        let woken = rx.try_recv().unwrap();
        assert_eq!(woken.req.path, "/a");
        assert_eq!(woken.req.wake, Wake::Changed);
        assert!(rx.try_recv().is_err());
        assert_eq!(parking.len(), 1);
        // A handler that read its snapshot before event 6 was notified must
        // not sleep through it.
        assert!(matches!(
            parking.park(parked("/c"), vec!["job:c".into()], 5, far),
            Err(Refused::Requeued)
        ));
        assert_eq!(rx.try_recv().unwrap().req.path, "/c");
    }

    #[test]
    fn deadline_and_capacity_and_close() {
        let parking = std::sync::Arc::new(Parking::new(2));
        let rx = parking.resumed().clone();
        let timer = {
            let p = parking.clone();
            std::thread::spawn(move || p.run_timer())
        };
        let soon = Instant::now() + Duration::from_millis(50);
        parking
            .park(parked("/soon"), vec!["k".into()], 0, soon)
            .ok()
            .unwrap();
        let woken = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(woken.req.wake, Wake::Deadline);
        assert!(Instant::now() >= soon);
        let far = Instant::now() + Duration::from_secs(60);
        parking
            .park(parked("/1"), vec!["k".into()], 0, far)
            .ok()
            .unwrap();
        parking
            .park(parked("/2"), vec!["k".into()], 0, far)
            .ok()
            .unwrap();
        assert!(matches!(
            parking.park(parked("/3"), vec!["k".into()], 0, far),
            Err(Refused::Full(_))
        ));
        parking.close();
        let mut paths: Vec<String> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap().req.path)
            .collect();
        paths.sort();
        assert_eq!(paths, vec!["/1", "/2"]);
        timer.join().unwrap();
    }
}
