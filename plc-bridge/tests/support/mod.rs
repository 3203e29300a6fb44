//! Shared by the OPC UA source tests: a journal stand-in that records what it is given and can
//! be held shut, to show the source waits for durability before acknowledging.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use takt_core::Input;
use takt_plc_bridge::opcua::{InputSink, SinkError};
use tokio::sync::watch;

/// Records every delivered input, in order. While `hold` is shut, `deliver` does not return —
/// like a commit that has not finished.
#[derive(Debug)]
pub struct Recorder {
    inputs: Mutex<Vec<Input>>,
    changed: watch::Sender<usize>,
    open: watch::Sender<bool>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            inputs: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            open: watch::channel(true).0,
        }
    }

    pub fn inputs(&self) -> Vec<Input> {
        self.inputs.lock().expect("recorder lock").clone()
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
        let mut open = self.open.subscribe();
        open.wait_for(|open| *open)
            .await
            .map_err(|e| SinkError(e.to_string()))?;
        let mut inputs = self.inputs.lock().expect("recorder lock");
        inputs.push(input);
        self.changed.send_replace(inputs.len());
        Ok(())
    }
}

/// The broadcast records among `inputs`, as (seq, vin, model, options).
pub fn broadcasts(inputs: &[Input]) -> Vec<(u32, String, String, Vec<String>)> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Broadcast { record, .. } => Some((
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
            Input::Condition { alarm, active, .. } => Some((alarm.name(), *active)),
            _ => None,
        })
        .collect()
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
