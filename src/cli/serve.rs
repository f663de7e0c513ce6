//! `labelhub serve`: runs the hub.
//!
//! Start-up builds each part after what it needs, so nothing is installed
//! later: configuration -> bind the public address -> the followers of the
//! hub's commits (long-poll parking, event streams, integrations) -> open
//! the database with them as its change listener (migrations; a newer
//! database is refused) -> bootstrap key and demo printer on a first start
//! -> restart recovery -> (threads from here on) one thread per enabled
//! printer, retention, the API and its HTTP server, the webhook sender, the
//! front door. The bound address is logged as `listening on ADDR`.
//!
//! Shutdown on SIGTERM or SIGINT: stop accepting requests and answer parked
//! long-polls, let each printer finish the label it is sending (queued jobs
//! stay queued), stop retention, exit 0. Bounded by
//! `PRINTER_HUB_SHUTDOWN_TIMEOUT_S` (printers) plus 5 s (HTTP).
//!
//! Exit codes: 0 after a graceful shutdown; 2 for bad configuration or
//! arguments; 1 when start-up fails (database refused, address in use).

use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::CliError;
use crate::api::{self, Api, Followers};
use crate::auth::AuthConfig;
use crate::auth::AuthState;
use crate::http::front::{Front, FrontConfig};
use crate::http::park::{Doorbell, Parking};
use crate::http::{Listen, Server, ServerConfig};
use crate::hub::device::BrotherDevices;
use crate::hub::labels::RenderLabels;
use crate::hub::{recovery, retention, Config, Hub};
use crate::integrations::{outbox, Integrations, IntegrationsConfig};

/// `serve --help`: every `PRINTER_HUB_*` variable from the tables the
/// configuration reads (hub, auth, integrations), so the help cannot miss
/// one.
fn usage() -> String {
    let mut text = String::from(
        "labelhub serve [-o LOGFILE]: run the print hub\n\n\
         OPTIONS:\n    \
         -o, --output FILE   append the log to FILE instead of stderr\n\n\
         Configured by environment variables (default in brackets):\n",
    );
    for (name, default, meaning) in super::variables() {
        text.push_str(&format!("    {name} [{default}]\n        {meaning}\n"));
    }
    text
}

/// Re-executes `labelhub serve` once with `MALLOC_ARENA_MAX=2` (glibc only).
///
/// glibc gives threads that allocate their own malloc arenas (up to eight
/// per core) and keeps what is freed in each; with tiny_http's and the
/// front's per-connection threads the hub's RSS then creeps up with use
/// (measured: 33 -> 40 MiB over 100,000 jobs). Two arenas keep it flat at
/// about half that, with the same throughput (`cargo bench --bench hub`).
/// glibc reads the variable only at process start, hence the `exec` (same
/// pid, same file descriptors), done before any thread exists. A value the
/// operator set is respected; if the `exec` fails the hub runs as it is.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_ARENA_MAX", "2")
            .exec();
        eprintln!("labelhub: running without MALLOC_ARENA_MAX=2 (re-exec failed: {err})");
    }
}

pub fn run(mut args: lexopt::Parser) -> Result<(), CliError> {
    let mut log_file = None;
    while let Some(arg) = args.next()? {
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => {
                println!("{}", usage());
                return Ok(());
            }
            lexopt::Arg::Short('o') | lexopt::Arg::Long("output") => {
                log_file = Some(std::path::PathBuf::from(args.value()?));
            }
            other => return Err(CliError::Usage(other.unexpected().to_string())),
        }
    }
    limit_malloc_arenas();
    let (config, auth, apps) = match (
        Config::from_env(),
        AuthConfig::from_env(),
        IntegrationsConfig::from_env(),
    ) {
        (Ok(config), Ok(auth), Ok(apps)) => (config, auth, apps),
        (config, auth, apps) => {
            let errors: Vec<String> = config
                .err()
                .into_iter()
                .chain(auth.err())
                .chain(apps.err())
                .flatten()
                .collect();
            return Err(CliError::Usage(format!(
                "bad configuration:\n  {}",
                errors.join("\n  ")
            )));
        }
    };
    init_logging(config.log_level, config.access_log, log_file.as_deref())?;
    super::warn_unknown_variables();
    let result = serve(config, auth, apps);
    // What the log's writer thread holds goes out before the process ends.
    log::logger().flush();
    result
}

fn init_logging(
    level: log::LevelFilter,
    access_log: bool,
    file: Option<&std::path::Path>,
) -> Result<(), CliError> {
    // appliance: `serve -o FILE` appends the log to FILE instead of stderr.
    let sink: Box<dyn std::io::Write + Send> = match file {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| CliError::Failed(format!("cannot open {}: {e}", path.display())))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    // `PRINTER_HUB_ACCESS_LOG=0`: the access lines are dropped by target
    // before they are formatted.
    super::spool::Logger::install(level, access_log, sink)
        .map_err(|e| CliError::Failed(format!("cannot start the log: {e}")))?;
    Ok(())
}

/// Where tiny_http's Unix socket goes: `<data dir>/run/http-<pid>.sock`
/// (the directory 0700, the socket 0600; one name per process, so a hub
/// still stopping never removes its successor's socket), or a private
/// directory under the system's temporary directory when that path is too
/// long for a socket address (108 bytes on Linux). Sockets of processes
/// that are gone (killed) are removed first.
fn socket_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let run = dir.join("run");
    remove_stale_sockets(&run);
    let name = format!("http-{}.sock", std::process::id());
    let path = run.join(&name);
    if path.as_os_str().len() <= 100 {
        return path;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir()
        .join(format!("labelhub-{}-{nanos}", std::process::id()))
        .join(name)
}

/// Removes `http-*.sock` files in `run` that nobody listens on any more.
fn remove_stale_sockets(run: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = std::fs::read_dir(run) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_socket = entry.file_type().is_ok_and(|t| t.is_socket());
        if !(is_socket && name.starts_with("http-") && name.ends_with(".sock")) {
            continue;
        }
        let refused = matches!(
            std::os::unix::net::UnixStream::connect(entry.path()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        );
        if refused {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Opens the hub with whoever waits for its commits, made first so they
/// hear every one: parked long-polls, event streams and the webhook
/// sender's wake-up line (with lookups and webhook settings). `serve` and
/// the in-process test hub start the same way.
/// `doorbell` wakes the HTTP server's handlers for a request back from
/// parking (none in-process, where nothing waits on a socket).
pub fn open_hub(
    config: Config,
    mut apps: IntegrationsConfig,
    doorbell: Option<Doorbell>,
) -> Result<(Arc<Followers>, Arc<Hub>), crate::hub::HubError> {
    apps.networks = crate::integrations::policy::Networks::new(config.printer_networks.clone());
    let mut parking = Parking::new(config.max_waiters);
    if let Some(doorbell) = doorbell {
        parking = parking.with_doorbell(doorbell);
    }
    let followers = Followers::new(Arc::new(parking), Integrations::new(apps));
    let hub = Hub::open(
        config,
        Arc::new(RenderLabels),
        Arc::new(BrotherDevices),
        followers.clone(),
    )?;
    Ok((followers, hub))
}

/// Runs the hub until SIGTERM or SIGINT.
pub fn serve(config: Config, auth: AuthConfig, apps: IntegrationsConfig) -> Result<(), CliError> {
    let started = Instant::now();
    let shutdown_timeout = config.shutdown_timeout;
    // Signals first: a SIGTERM during start-up still shuts down cleanly.
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| CliError::Failed(format!("cannot install signal handlers: {e}")))?;
    // A file size limit (RLIMIT_FSIZE) must surface as a
    // write error (EFBIG -> storage_unavailable), not kill the hub.
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .map_err(|e| CliError::Failed(format!("cannot install signal handlers: {e}")))?;
    // appliance: bind the public address before anything is created, so a
    // taken port leaves no database, key or demo printer behind; then lock
    // the data directory (one hub per directory; `restore` checks it).
    let public = std::net::TcpListener::bind(&config.listen)
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", config.listen)))?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        CliError::Failed(format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let _data_lock = crate::hub::backup::DataDirLock::acquire(&config.data_dir)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    // The internal server is bound (no thread yet) before the hub opens, so
    // the long-poll parking is made with its doorbell.
    let bound = Server::bind(ServerConfig {
        listen: Listen::Unix(socket_path(&config.data_dir)),
        threads: config.http_threads,
        // Eight always run; more start while all are busy (`http::server`).
        standing: config.http_threads.min(8),
        idle: Duration::from_secs(30),
        max_body: config.max_body_bytes,
    })
    .map_err(|e| CliError::Failed(format!("cannot bind the internal HTTP socket: {e}")))?;
    let (followers, hub) = open_hub(config, apps, Some(bound.doorbell()))
        .map_err(|e| CliError::Failed(format!("cannot open the database: {e}")))?;
    log::info!(
        "database {} (schema {})",
        hub.config.db_path().display(),
        crate::hub::db::SCHEMA_VERSION
    );
    // A first start with no key at all gets a bootstrap admin key, written
    // to a 0600 file; the log names the file, never the key.
    match crate::auth::bootstrap::ensure(
        &hub.db.writer(),
        &hub.config.data_dir,
        crate::hub::now_ms(),
    ) {
        Ok(Some(path)) => log::warn!(
            "no API key existed: created the bootstrap admin key; read it from {} (mode 0600)",
            path.display()
        ),
        Ok(None) => {}
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot create the bootstrap admin key: {e}"
            )))
        }
    }
    if let Err(e) = hub.ensure_demo_printer() {
        log::error!("could not create the demo printer: {e}");
    }
    // Recovery finishes before any thread exists.
    let report = recovery::run(&hub);
    if report.errors > 0 {
        log::error!(
            "recovery had {} errors (see above); starting anyway",
            report.errors
        );
    }
    hub.start_printers()
        .map_err(|e| CliError::Failed(format!("cannot start printers: {e}")))?;
    let (retention_stop, retention_rx) = crossbeam_channel::bounded::<()>(1);
    let retention = retention::spawn(hub.clone(), retention_rx)
        .map_err(|e| CliError::Failed(format!("cannot start the retention thread: {e}")))?;

    let front_cfg = FrontConfig {
        max_conns: auth.max_conns,
        max_conns_per_client: auth.max_conns_per_client,
        max_waits_per_client: auth.max_waits_per_client,
        header_timeout: auth.header_timeout,
        body_timeout: auth.body_timeout,
        max_header_bytes: auth.max_header_bytes,
        max_headers: auth.max_headers,
        max_body_bytes: hub.config.max_body_bytes,
        max_in_flight: hub.config.http_threads * 65,
        ..FrontConfig::default()
    };
    let access = AuthState {
        gate: crate::auth::Gate::new(auth),
        behind_front: true,
    };
    let api = Api::new(hub.clone(), followers.clone(), Some(Arc::new(access)));
    // The outbound webhook sender (it resends what the outbox still holds
    // from before a crash).
    let (sender_stop, sender_rx) = crossbeam_channel::bounded::<()>(1);
    let _sender = outbox::spawn(hub.clone(), followers.integrations.clone(), sender_rx)
        .map_err(|e| CliError::Failed(format!("cannot start the webhook sender: {e}")))?;
    // The public address (bound above, before anything was created)
    // belongs to the front door (http::front); tiny_http listens on a
    // private Unix socket that only the front talks to.
    let auto_add = if hub.config.auto_add_usb {
        crate::discover::auto::AutoAdd::spawn(hub.clone(), hub.config.sysfs_root.clone())
            .map_err(|e| log::error!("cannot start USB auto-add: {e}"))
            .ok()
    } else {
        None
    };
    let server = match bound.start(
        api.clone(),
        Arc::new(api::routes()),
        followers.parking.clone(),
    ) {
        Ok(server) => server,
        Err(e) => {
            hub.shutdown(shutdown_timeout);
            return Err(CliError::Failed(format!(
                "cannot start the HTTP server: {e}"
            )));
        }
    };
    let Some(backend) = server.socket_path().map(|p| p.to_path_buf()) else {
        server.shutdown(Duration::from_secs(5));
        hub.shutdown(shutdown_timeout);
        return Err(CliError::Failed("the internal server has no socket".into()));
    };
    log::debug!(
        "internal HTTP server on unix:{} (answers only requests passed by the front door)",
        backend.display()
    );
    let mut front = match Front::start(
        public,
        backend,
        front_cfg,
        Arc::new(api::error::front_problem),
    ) {
        Ok(front) => front,
        Err(e) => {
            server.shutdown(Duration::from_secs(5));
            hub.shutdown(shutdown_timeout);
            return Err(CliError::Failed(format!(
                "cannot start the front door: {e}"
            )));
        }
    };
    crate::metrics::set_open_connections(front.open_connections_probe());
    log::info!(
        "listening on {} (started in {:.1} ms)",
        front.local_addr(),
        started.elapsed().as_secs_f64() * 1000.0
    );

    // appliance: systemd readiness and watchdog (no-ops outside systemd).
    let watchdog = super::watchdog::ready(&hub, &front.local_addr().to_string());
    let signal = signals.forever().next();
    log::info!(
        "received {}; shutting down",
        match signal {
            Some(SIGINT) => "SIGINT",
            _ => "SIGTERM",
        }
    );
    let stopping = Instant::now();
    super::watchdog::stopping(watchdog);
    if let Some(a) = auto_add {
        a.stop();
    }
    front.stop();
    server.shutdown(Duration::from_secs(5));
    let stuck = hub.shutdown(shutdown_timeout);
    let _ = retention_stop.send(());
    let _ = retention.join();
    // Not joined: a delivery in flight may take its timeout; it stays
    // pending in the outbox and is sent again on the next start.
    let _ = sender_stop.send(());
    if stuck.is_empty() {
        log::info!(
            "stopped in {:.0} ms",
            stopping.elapsed().as_secs_f64() * 1000.0
        );
    } else {
        log::warn!(
            "stopped in {:.0} ms; printer threads still sending after the timeout: {}",
            stopping.elapsed().as_secs_f64() * 1000.0,
            stuck.join(", ")
        );
    }
    Ok(())
}
