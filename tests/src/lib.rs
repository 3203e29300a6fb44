//! # takt-tests
//!
//! End-to-end tests across the crates: the controller and sim-line over real sockets, checked
//! against sim-line's ground truth. The tests live in `tests/tests/`; this library holds what
//! they share: the example plant and sim-line's floor, rewired to free ports in a temporary
//! directory.

pub mod acceptance;
pub mod disk;
pub mod driving;
pub mod follower;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use takt_sim_line::floor::Floor;
use takt_sim_line::player::Sim;

/// The repository's root.
#[must_use]
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_owned)
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `config/example.toml` as shipped.
#[must_use]
pub fn example_config() -> String {
    read("config/example.toml")
}

/// `config/example.toml` without its plant I/O (`[[sources]]`, `[[devices]]`), for a test
/// that wires the plant to peers of its own.
///
/// # Panics
/// If the example is not valid TOML.
#[must_use]
pub fn example_plant_only() -> String {
    let mut doc: toml_edit::DocumentMut = example_config().parse().expect("example is TOML");
    doc.remove("sources");
    doc.remove("devices");
    doc.to_string()
}

/// `sim-line/floor.toml`, listening on free ports, its certificates under `dir`.
///
/// # Panics
/// If the shipped floor file is broken.
#[must_use]
pub fn floor(dir: &Path) -> Floor {
    let mut floor = Floor::parse(&read("sim-line/floor.toml")).expect("sim-line/floor.toml");
    floor.opcua.listen.set_port(0);
    floor.opcua.pki_dir = dir.join("sim-line-pki");
    for module in &mut floor.modules {
        module.listen.set_port(0);
    }
    floor
}

/// The example configuration wired to `sim` instead of sim-line's fixed ports, with its
/// certificates under `dir`: the demo's wiring, on free ports.
///
/// # Panics
/// If the example no longer names sim-line's default endpoints (this would wire nothing).
#[must_use]
pub fn wired_example(sim: &Sim, dir: &Path) -> String {
    let mut text = example_config();
    let mut swap = |from: &str, to: &str| {
        assert!(text.contains(from), "config/example.toml has no `{from}`");
        text = text.replace(from, to);
    };
    swap(
        "opc.tcp://127.0.0.1:4840/",
        &format!("opc.tcp://{}/", sim.opcua().local_addr()),
    );
    for (name, default) in [
        ("PTL-DOORS", "127.0.0.1:5020"),
        ("PTL-WHEELS", "127.0.0.1:5021"),
    ] {
        let addr = sim.module_addr(name).expect("module on the floor");
        swap(&format!("\"{default}\""), &format!("\"{addr}\""));
    }
    swap(
        "data_dir = \"data\"",
        &format!("data_dir = \"{}\"", dir.join("data").display()),
    );
    swap(
        "pki_dir = \"data/pki\"",
        &format!("pki_dir = \"{}\"", dir.join("takt-pki").display()),
    );
    text
}

/// A controller running in this process (the [`takt::app::App`] `takt run` serves), on a free
/// loopback port, until [`InProcess::stop`].
#[derive(Debug)]
pub struct InProcess {
    /// Where it serves HTTP.
    pub addr: std::net::SocketAddr,
    /// Its journal writer (and committed status).
    pub writer: takt::runtime::writer::Handle,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Builds and runs the controller for `cfg`.
    ///
    /// # Panics
    /// If it cannot start.
    pub async fn start(cfg: takt::config::Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let app = takt::app::App::build(cfg)
            .await
            .expect("the controller starts");
        let writer = app.writer();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            writer,
            stop,
            running,
        }
    }

    /// Stops it as `takt run` stops on SIGTERM (the caller must have dropped its clones of
    /// `writer`: the journal writer ends once every handle is gone): plant connections (lamps to their offline
    /// state), HTTP, the journal's last commit and snapshot.
    ///
    /// # Panics
    /// If it did not stop cleanly.
    pub async fn stop(self) {
        let Self {
            writer,
            stop,
            running,
            ..
        } = self;
        drop(writer);
        let _ = stop.send(());
        running
            .await
            .expect("controller task")
            .expect("a clean stop");
    }
}

/// Polls `check` every 10 ms until it gives a value; panics naming `what` after `limit`.
///
/// # Panics
/// When `limit` passes first.
pub async fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The project's venv Python with `asyncua` and `pymodbus`, made (or checked) by
/// `scripts/python-env`.
///
/// # Panics
/// If the script fails.
#[must_use]
pub fn venv_python() -> PathBuf {
    let status = Command::new(repo_root().join("scripts/python-env"))
        .stdout(Stdio::null())
        .status()
        .expect("scripts/python-env runs");
    assert!(status.success(), "scripts/python-env failed");
    repo_root().join(".venv/bin/python")
}

/// The `takt` binary, built (or found up to date) in this workspace's target directory.
///
/// # Panics
/// If it cannot be built.
#[must_use]
pub fn takt_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Tests run from target/<profile>/deps/; the binary sits in target/<profile>/.
            let exe = std::env::current_exe().expect("test executable");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>")
                .to_owned();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut build = Command::new(cargo);
            build.args([
                "build", "--quiet", "--locked", "-p", "takt", "--bin", "takt",
            ]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build
                .current_dir(repo_root())
                .status()
                .expect("running cargo build");
            assert!(status.success(), "cargo build -p takt failed");
            profile_dir.join("takt")
        })
        .clone()
}

/// A `takt run` process working in a directory of its own (its `data/` lives there).
#[derive(Debug)]
pub struct Controller {
    child: Child,
    status_url: String,
    log: Arc<Mutex<String>>,
}

impl Controller {
    /// Starts `takt run --config config` in `dir` with HTTP on a free port; returns once it
    /// says it is running (at most a minute).
    ///
    /// # Panics
    /// If it does not start.
    pub async fn start(dir: &Path, config: &Path) -> Self {
        let mut child = Command::new(takt_binary())
            .args(["run", "--config"])
            .arg(config)
            .current_dir(dir)
            .env("TAKT_HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env_remove("TAKT_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting takt");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("controller running")
                    && let Some(url) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("status="))
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.to_owned());
                }
                let mut log = kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(Ok(status_url)) = tokio::time::timeout(Duration::from_secs(60), rx).await else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("takt did not start:\n{}", lock_log(&log));
        };
        Self {
            child,
            status_url,
            log,
        }
    }

    /// `GET /status` as JSON.
    ///
    /// # Panics
    /// If the controller does not answer.
    pub async fn status(&self) -> serde_json::Value {
        let url = self.status_url.clone();
        let body = tokio::task::spawn_blocking(move || http_get(&url))
            .await
            .expect("status request");
        serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!("/status is not JSON ({e}): {body}\n{}", lock_log(&self.log))
        })
    }

    /// Where it serves HTTP: `http://host:port`.
    #[must_use]
    pub fn base_url(&self) -> String {
        self.status_url.trim_end_matches("/status").to_owned()
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no final snapshot, connections cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded) for a clean stop.
    ///
    /// # Panics
    /// If it does not stop cleanly within 30 s.
    pub async fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                assert!(
                    exit.success(),
                    "takt exited {exit:?}:\n{}",
                    lock_log(&self.log)
                );
                return;
            }
            if std::time::Instant::now() > deadline {
                self.kill();
                panic!("takt did not stop on SIGTERM:\n{}", lock_log(&self.log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it logged so far.
    #[must_use]
    pub fn log(&self) -> String {
        lock_log(&self.log)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock_log(log: &Mutex<String>) -> String {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// A plain HTTP/1.1 GET of `url` (`http://host:port/path`); the body.
///
/// # Panics
/// If the server does not answer 200 within 10 s.
#[must_use]
pub fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{url}: {head}");
    body.to_owned()
}

/// The resident memory of process `pid` in KiB (Linux); 0 if it cannot be read.
#[must_use]
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
