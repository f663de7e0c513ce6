//! The hub in this process: the library's hub, API and gate put together
//! as `labelhub serve` puts them (same variables, bootstrap key, demo
//! printer, recovery, printer threads on the emulator), with requests run
//! through `http::fake` (router, gate, handler) instead of a socket. API
//! and policy tests that need neither the front door nor a process use
//! it: thousands of requests cost milliseconds, and a parked long-poll is
//! woken by the test itself.
//!
//! What it does not have: the front door (head limits, a target starting
//! with `//`, per-address caps), the access log, the retention and
//! webhook-sender threads, and a process to kill.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use labelhub::api::{self, Api};
use labelhub::auth::{AuthConfig, AuthState, Gate};
use labelhub::http::fake::{Fake, FakeRequest, Outcome};
use labelhub::http::{Response, Router};
use labelhub::hub::{recovery, Config, Hub};
use labelhub::integrations::IntegrationsConfig;
use serde_json::Value;

use crate::support::{temp_dir, Call, Client, Resp};

/// A hub, its API and the route table, in this process.
pub struct InHub {
    pub hub: Arc<Hub>,
    pub api: Arc<Api>,
    pub router: Router<Api>,
    pub data_dir: PathBuf,
    /// The bootstrap admin key, sent unless a request names its own.
    pub key: String,
}

impl InHub {
    /// A hub with a fresh data directory and the demo printer.
    pub fn start() -> InHub {
        InHub::start_env(&[])
    }

    /// A hub with extra `PRINTER_HUB_*` variables.
    pub fn start_env(env: &[(&str, &str)]) -> InHub {
        let data_dir = temp_dir("inproc");
        let mut vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert(
            "PRINTER_HUB_DATA_DIR".into(),
            data_dir.to_str().unwrap().into(),
        );
        let config = Config::from_vars(&vars).unwrap();
        let auth = AuthConfig::from_vars(&vars).unwrap();
        let apps = IntegrationsConfig::from_vars(&vars).unwrap();
        let (followers, hub) = labelhub::cli::serve::open_hub(config, apps, None).unwrap();
        let key_file = labelhub::auth::bootstrap::ensure(
            &hub.db.writer(),
            &hub.config.data_dir,
            labelhub::hub::now_ms(),
        )
        .unwrap()
        .unwrap();
        hub.ensure_demo_printer().unwrap();
        recovery::run(&hub);
        hub.start_printers().unwrap();
        let access = AuthState {
            gate: Gate::new(auth),
            behind_front: true,
        };
        let api = Api::new(hub.clone(), followers, Some(Arc::new(access)));
        let key = std::fs::read_to_string(key_file)
            .unwrap()
            .trim()
            .to_string();
        InHub {
            hub,
            api,
            router: api::routes(),
            data_dir,
            key,
        }
    }

    /// The request runner (body limit as configured).
    pub fn fake(&self) -> Fake<'_, Api> {
        Fake {
            max_body: self.hub.config.max_body_bytes,
            ..Fake::new(&self.api, &self.router)
        }
    }

    /// Runs a request once; a parked long-poll comes back parked.
    pub fn outcome(&self, req: FakeRequest) -> Outcome {
        self.fake().send(req)
    }

    /// The in-process form of a call.
    pub fn fake_request(call: Call<'_>) -> FakeRequest {
        let mut req = FakeRequest::new(call.method, call.target);
        for (k, v) in call.headers {
            req = req.header(k, v);
        }
        req.body(call.body.unwrap_or_default())
    }
}

/// A response as the tests read it (header names lower-cased).
pub fn resp(r: Response) -> Resp {
    Resp {
        status: r.status,
        headers: r
            .headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        bytes: r.body,
    }
}

impl Client for InHub {
    fn key(&self) -> &str {
        &self.key
    }

    fn call(&self, call: Call<'_>, _exact: bool) -> Resp {
        resp(self.fake().call(InHub::fake_request(call)))
    }

    /// Waits for the printer threads (a long-poll here answers at once,
    /// as its deadline would, so this polls until the batch is done).
    fn wait_batch(&self, batch_id: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let snap = self.get(&format!("/api/batches/{batch_id}")).json();
            if snap["summary"]["all_terminal"] == true {
                return snap;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "batch not finished: {snap}"
            );
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }
}

impl Drop for InHub {
    fn drop(&mut self) {
        self.hub.shutdown(Duration::from_secs(10));
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}
