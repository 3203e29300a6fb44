//! Shared by the OPC UA source tests: a journal stand-in that records what it is given and can
//! be held shut, to show the source waits for durability before acknowledging.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use takt_core::Input;
use takt_core::{AlarmInput, SequencingInput};
use takt_plc_bridge::opcua::{InputSink, SinkError};
use tokio::sync::watch;

/// Records every delivered input, in order. While `hold` is shut, `deliver` does not return —
/// like a commit that has not finished.
#[derive(Debug)]
pub struct Recorder {
    inputs: Mutex<Vec<Input>>,
    /// How many inputs each delivery carried, in order.
    deliveries: Mutex<Vec<usize>>,
    changed: watch::Sender<usize>,
    open: watch::Sender<bool>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            inputs: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            open: watch::channel(true).0,
        }
    }

    pub fn inputs(&self) -> Vec<Input> {
        self.inputs.lock().expect("recorder lock").clone()
    }

    /// How many inputs each delivery carried, in order.
    pub fn deliveries(&self) -> Vec<usize> {
        self.deliveries.lock().expect("recorder lock").clone()
    }

    /// Delivers block from now on, until `release`.
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Waits (at most `limit`) until `done` holds for the inputs so far; panics with them if
    /// it never does.
    pub async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Input]) -> bool,
    ) -> Vec<Input> {
        let mut changed = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let inputs = self.inputs();
            if done(&inputs) {
                return inputs;
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                panic!("timed out waiting for {what}; inputs so far: {inputs:#?}");
            }
        }
    }
}

impl InputSink for Recorder {
    async fn deliver(&self, input: Input) -> Result<(), SinkError> {
        self.deliver_all(vec![input]).await
    }

    async fn deliver_all(&self, batch: Vec<Input>) -> Result<(), SinkError> {
        let mut open = self.open.subscribe();
        open.wait_for(|open| *open)
            .await
            .map_err(|e| SinkError(e.to_string()))?;
        self.deliveries
            .lock()
            .expect("recorder lock")
            .push(batch.len());
        let mut inputs = self.inputs.lock().expect("recorder lock");
        inputs.extend(batch);
        self.changed.send_replace(inputs.len());
        Ok(())
    }
}

/// The broadcast records among `inputs`, as (seq, vin, model, options).
pub fn broadcasts(inputs: &[Input]) -> Vec<(u32, String, String, Vec<String>)> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Sequencing(SequencingInput::Broadcast { record, .. }) => Some((
                record.seq,
                record.vin.clone(),
                record.model.clone(),
                record.options.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// Conditions among `inputs`, as (alarm name, active).
pub fn conditions(inputs: &[Input]) -> Vec<(&'static str, bool)> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Alarms(AlarmInput::Condition { alarm, active, .. }) => {
                Some((alarm.name(), *active))
            }
            _ => None,
        })
        .collect()
}

/// The namespace of `asyncua_plc.py`'s nodes, as a source's configuration line.
pub const NAMESPACE: &str = r#"namespace_uri = "urn:example:plant-b:broadcast""#;

/// The source configuration for `asyncua_plc.py arrays …` (its S7-style data block of field
/// arrays, options as `SEAT:LTHR-BLK;DRIVE:LHD`), in `order`, reading `slot_count` slots.
pub fn s7_arrays_source(order: &str, slot_count: usize) -> String {
    format!(
        r#"{NAMESPACE}
        [options_format]
        separators = ";"
        key_value = ":"
        [layout]
        kind = "fifo"
        order = "{order}"
        trigger = 's="DB_Bcast"."LastSeq"'
        slot_count = {slot_count}
        arrays = {{ seq = 's="DB_Bcast"."Seq"', vin = 's="DB_Bcast"."VIN"', model = 's="DB_Bcast"."Model"', options = 's="DB_Bcast"."Opt"' }}
        "#
    )
}

/// `tests/interop/pymodbus_server.py` (a Banner-style module on unit 5, digital I/O on unit
/// 6), killed when dropped, and the port it will listen on: clients retry until it does.
/// `None` (the test skips) without the venv.
#[derive(Debug)]
pub struct Pymodbus {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl Pymodbus {
    pub fn start() -> Option<Self> {
        let python = venv_python()?;
        // A free port: bind, read, release.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("address");
        let child = std::process::Command::new(python)
            .arg(repo_root().join("tests/interop/pymodbus_server.py"))
            .arg(addr.port().to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python starts");
        Some(Self { child, addr })
    }
}

impl Drop for Pymodbus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The project venv's Python with the interop peers (`scripts/python-env`). Missing: `None`,
/// and the test skips — except under `CI=true`, where the peers must run.
pub fn venv_python() -> Option<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} missing: run scripts/python-env",
        python.display()
    );
    eprintln!(
        "skipping: {} missing (run scripts/python-env)",
        python.display()
    );
    None
}

/// A VIN for test record `n` (legal alphabet, no check digit).
pub fn vin(n: u32) -> String {
    format!("WVWZZZ1JZ3W{n:06}")
}

/// How long a Python PLC may take for anything a test waits on.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A Python asyncua PLC (`tests/interop/<script>`), its command pipe and its event lines;
/// killed when dropped. It prints `{"listening": PORT}` once it serves.
#[derive(Debug)]
pub struct PythonPlc {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    events: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pub port: u16,
    /// Every event read so far, in order.
    pub log: Vec<serde_json::Value>,
}

impl PythonPlc {
    /// Starts `script` with a free port and `args`; `None` (the test skips) without the venv.
    pub async fn start(script: &str, args: &[&str]) -> Option<Self> {
        use tokio::io::AsyncBufReadExt;
        let python = venv_python()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("address")
            .port();
        let mut child = tokio::process::Command::new(python)
            .arg(repo_root().join("tests/interop").join(script))
            .arg(port.to_string())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take().expect("stdin");
        let events = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut plc = Self {
            _child: child,
            stdin,
            events,
            port,
            log: Vec::new(),
        };
        assert_eq!(
            plc.next_event().await,
            serde_json::json!({ "listening": port })
        );
        Some(plc)
    }

    pub async fn send(&mut self, command: serde_json::Value) {
        use tokio::io::AsyncWriteExt;
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("command");
    }

    pub async fn next_event(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(WAIT, self.events.next_line())
            .await
            .expect("an event from the PLC in time")
            .expect("PLC output")
            .expect("PLC still running");
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON event");
        self.log.push(event.clone());
        event
    }

    /// Reads events until `done` holds for one of them, which it returns; panics with the
    /// log if that takes longer than `WAIT` (a PLC that keeps talking must not keep a test).
    pub async fn until(&mut self, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next_event())
                .await
                .unwrap_or_else(|_| panic!("no such event in time; log: {:?}", self.log));
            if done(&event) {
                return event;
            }
        }
    }

    /// A source configuration for this PLC: `endpoint_path` on its port, fast publishing,
    /// a fresh PKI folder, and `rest` (namespace, layout, options format) as TOML.
    pub fn source(&self, endpoint_path: &str, rest: &str) -> takt_plc_bridge::opcua::SourceConfig {
        let text = format!(
            r#"
            line = "A1"
            point = "B1"
            endpoint = "opc.tcp://127.0.0.1:{port}/{endpoint_path}"
            publishing_interval_ms = 10
            poll_ms = 200
            pki_dir = "{pki}"
            {rest}
            "#,
            port = self.port,
            pki = tempfile::tempdir().expect("pki dir").keep().display(),
        );
        toml::from_str(&text).expect("source config")
    }
}
