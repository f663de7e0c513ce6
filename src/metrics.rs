//! Process-wide metrics: counters and histograms that any layer records
//! into with one call, and the Prometheus text exposition format (0.0.4)
//! they are read out in.
//!
//! This module is a leaf like `log`: it depends on nothing of the crate,
//! and every layer may call it (`http::server` per request, `hub::db` per
//! commit, `hub::worker` per finished job). Values that live elsewhere (jobs
//! by state in the database, parked long-polls, open connections) are not
//! kept here; the `/metrics` handler (`api::metrics`) reads them at scrape
//! time and writes them with the same [`Exposition`] writer.
//!
//! **Invariants.**
//! * Recording never blocks on a scrape for long and never allocates on the
//!   request path: a series is found under a read lock (created once under
//!   the write lock) and updated with relaxed atomics.
//! * Label values are bounded sets: a route *pattern* (never a raw path),
//!   a method from a fixed list, a status code, a printer id, an error code.
//!   An unknown method is `other`, an unmatched path is `unmatched`, so a
//!   client cannot create series at will.
//! * The output always parses: names and label names are constants, label
//!   values are escaped (`\\`, `"`, newline), and every family has `# HELP`
//!   and `# TYPE` once, before its samples (checked by `promtool check
//!   metrics` in the integration tests).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

/// Buckets (seconds) of the request latency histograms: 1 ms to 60 s (a
/// long-poll waits up to 60 s and counts its waiting time).
pub const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets (seconds) of the commit latency histogram: 0.1 ms (no fsync,
/// tmpfs) to 5 s (an SD card under load).
pub const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A histogram with fixed buckets; lock-free to record.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); one more for `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(idx) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Cumulative bucket counts (`le` bound, count), `+Inf` last, the
    /// total count and the sum in seconds. Read bucket by bucket: a scrape
    /// during recording may be one observation behind in some bucket,
    /// never inconsistent within itself (the count is the `+Inf` bucket).
    fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0u64;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            acc += c.load(Ordering::Relaxed);
            out.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), acc));
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (out, acc, sum)
    }
}

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A family of series of one metric, one per label-value tuple `K`.
pub struct Family<K, T> {
    series: RwLock<BTreeMap<K, Arc<T>>>,
}

impl<K: Ord + Clone, T> Family<K, T> {
    fn new() -> Family<K, T> {
        Family {
            series: RwLock::new(BTreeMap::new()),
        }
    }

    /// The series for `key`, created with `make` the first time. The read
    /// lock is held only for the look-up.
    fn get<Q>(&self, key: &Q, make: impl FnOnce() -> T) -> Arc<T>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return s.clone();
        }
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }

    /// Every series, in label order.
    pub fn all(&self) -> Vec<(K, Arc<T>)> {
        self.series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Every metric the process records (the ones read at scrape time are
/// written by `api::metrics`).
pub struct Registry {
    /// (method, route pattern)
    pub http_duration: Family<(&'static str, &'static str), Histogram>,
    /// (method, route pattern, status)
    pub http_responses: Family<(&'static str, &'static str, u16), Counter>,
    pub commit_duration: Histogram,
    /// printer id
    pub labels_printed: Family<String, Counter>,
    /// (printer id, error code)
    pub jobs_failed: Family<(String, String), Counter>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    http_duration: Family::new(),
    http_responses: Family::new(),
    commit_duration: Histogram::new(COMMIT_BUCKETS),
    labels_printed: Family::new(),
    jobs_failed: Family::new(),
});

/// The process's registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// The method as a bounded label value.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Label value of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Records one answered HTTP request: `route` is the matched route's
/// pattern (`/api/jobs/{job_id}`), or empty when none matched.
pub fn http_request(method: &str, route: &'static str, status: u16, elapsed: Duration) {
    let method = method_label(method);
    let route = if route.is_empty() { UNMATCHED } else { route };
    let r = registry();
    r.http_duration
        .get(&(method, route), || Histogram::new(HTTP_BUCKETS))
        .observe(elapsed);
    r.http_responses
        .get(&(method, route, status), Counter::default)
        .inc();
}

/// Records one database commit (the `COMMIT` statement: the fsync).
pub fn commit(elapsed: Duration) {
    registry().commit_duration.observe(elapsed);
}

/// Records one label printed (a job reached `done`) on a printer.
pub fn label_printed(printer_id: &str) {
    registry()
        .labels_printed
        .get(printer_id, Counter::default)
        .inc();
}

/// Records one job that failed on a printer, by its error code.
pub fn job_failed(printer_id: &str, error_code: &str) {
    registry()
        .jobs_failed
        .get(&(printer_id.to_string(), error_code.to_string()), || {
            Counter::default()
        })
        .inc();
}

type Probe = Box<dyn Fn() -> usize + Send + Sync>;

static OPEN_CONNECTIONS: std::sync::OnceLock<Probe> = std::sync::OnceLock::new();

/// Installs the count of open client connections (the front door's; once).
pub fn set_open_connections(probe: Probe) {
    let _ = OPEN_CONNECTIONS.set(probe);
}

/// Client connections open now (0 before the front door started).
pub fn open_connections() -> usize {
    OPEN_CONNECTIONS.get().map_or(0, |f| f())
}

/// Metric types of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A writer of the text exposition format, version 0.0.4
/// (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// `# HELP` and `# TYPE` of a family; call once, before its samples.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram series.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let (buckets, count, sum) = h.snapshot();
        let bucket = format!("{name}_bucket");
        for (le, n) in buckets {
            let le = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                le.to_string()
            };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, n as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    /// Writes everything this registry records (the HTTP, commit and
    /// printer counters); `printer` maps a printer id to its label value
    /// and returns `None` for a printer the caller may not see.
    pub fn registry(&mut self, printer: &dyn Fn(&str) -> Option<String>) {
        let r = registry();
        let name = "labelhub_http_request_duration_seconds";
        self.family(
            name,
            Kind::Histogram,
            "Time from receiving a request to answering it, by route pattern \
             (long-polls include their wait)",
        );
        for ((method, route), h) in r.http_duration.all() {
            self.histogram(name, &[("method", method), ("route", route)], &h);
        }
        let name = "labelhub_http_responses_total";
        self.family(
            name,
            Kind::Counter,
            "Answered requests by route pattern and status code",
        );
        for ((method, route, status), c) in r.http_responses.all() {
            let code = status.to_string();
            self.sample(
                name,
                &[("method", method), ("route", route), ("code", &code)],
                c.get() as f64,
            );
        }
        let name = "labelhub_db_commit_duration_seconds";
        self.family(
            name,
            Kind::Histogram,
            "Time of each database COMMIT (the fsync), writes and grouped submissions",
        );
        self.histogram(name, &[], &r.commit_duration);
        let name = "labelhub_labels_printed_total";
        self.family(
            name,
            Kind::Counter,
            "Labels sent to the printer and marked done since the hub started",
        );
        for (id, c) in r.labels_printed.all() {
            if let Some(p) = printer(&id) {
                self.sample(name, &[("printer", &p)], c.get() as f64);
            }
        }
        let name = "labelhub_jobs_failed_total";
        self.family(
            name,
            Kind::Counter,
            "Jobs that failed on a printer since the hub started, by error_code",
        );
        for ((id, code), c) in r.jobs_failed.all() {
            if let Some(p) = printer(&id) {
                self.sample(
                    name,
                    &[("printer", &p), ("error_code", &code)],
                    c.get() as f64,
                );
            }
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_label(out: &mut String, v: &str) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_the_inf_bucket() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let (b, count, sum) = h.snapshot();
        assert_eq!(b, vec![(0.01, 2), (0.1, 3), (f64::INFINITY, 4)]);
        assert_eq!(count, 4);
        assert!((sum - 3.065).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn exposition_escapes_label_values_and_writes_histograms() {
        let mut e = Exposition::new();
        e.family("x_total", Kind::Counter, "a \\ help\nline");
        e.sample("x_total", &[("a", "q\"b\\c\nd")], 3.0);
        e.sample("x_total", &[], 0.5);
        let h = Histogram::new(&[0.5]);
        h.observe(Duration::from_millis(250));
        e.family("h_seconds", Kind::Histogram, "h");
        e.histogram("h_seconds", &[("route", "/a/{id}")], &h);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total a \\\\ help\\nline\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"b\\\\c\\nd\"} 3\nx_total 0.5\n\
             # HELP h_seconds h\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{route=\"/a/{id}\",le=\"0.5\"} 1\n\
             h_seconds_bucket{route=\"/a/{id}\",le=\"+Inf\"} 1\n\
             h_seconds_sum{route=\"/a/{id}\"} 0.25\n\
             h_seconds_count{route=\"/a/{id}\"} 1\n"
        );
    }

    #[test]
    fn unknown_methods_and_unmatched_paths_share_one_series() {
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("GET"), "GET");
        http_request("BREW", "", 404, Duration::from_millis(1));
        http_request("FOO", "", 404, Duration::from_millis(1));
        let n = registry()
            .http_duration
            .all()
            .into_iter()
            .find(|((m, r), _)| *m == "other" && *r == UNMATCHED)
            .map(|(_, h)| h.count())
            .unwrap_or(0);
        assert!(n >= 2, "{n}");
    }
}
