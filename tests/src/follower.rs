//! A client of the event stream as a supplier or a screen would write one: it follows
//! `GET /api/v1/events`, and whenever the connection drops (a controller killed, restarted on
//! another port) it reconnects with `Last-Event-ID` set to the last id it received.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One message received: (id, event, data).
pub type Received = (i64, String, Value);

/// A stream client running in the background.
#[derive(Debug)]
pub struct Follower {
    /// Where the controller serves now (`http://host:port`); the harness updates it.
    pub base: Arc<Mutex<String>>,
    received: Arc<Mutex<Vec<Received>>>,
    connects: Arc<Mutex<u64>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Follows the stream at `base` with `token`, from the whole outbox (`after=0`).
    #[must_use]
    pub fn start(base: &str, token: &str) -> Self {
        Self::resume(base, token, Vec::new())
    }

    /// Follows on from what an earlier follower `received`, as a client back from an outage
    /// does: it connects with `Last-Event-ID` set to the last id it has.
    #[must_use]
    pub fn resume(base: &str, token: &str, received: Vec<Received>) -> Self {
        let base = Arc::new(Mutex::new(base.to_owned()));
        let received = Arc::new(Mutex::new(received));
        let connects = Arc::new(Mutex::new(0));
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(follow(
            base.clone(),
            token.to_owned(),
            received.clone(),
            connects.clone(),
            stopping,
        ));
        Self {
            base,
            received,
            connects,
            stop,
            task,
        }
    }

    /// The id of the last event received (0 before the first).
    #[must_use]
    pub fn last_id(&self) -> i64 {
        lock(&self.received).last().map_or(0, |r| r.0)
    }

    /// Stops following; returns everything received, in order, and how often it connected.
    pub async fn stop(self) -> (Vec<Received>, u64) {
        self.stop.send_replace(true);
        let _ = self.task.await;
        let connects = *lock(&self.connects);
        (std::mem::take(&mut *lock(&self.received)), connects)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn follow(
    base: Arc<Mutex<String>>,
    token: String,
    received: Arc<Mutex<Vec<Received>>>,
    connects: Arc<Mutex<u64>>,
    mut stopping: watch::Receiver<bool>,
) {
    let http = reqwest::Client::new();
    while !*stopping.borrow() {
        let last = lock(&received).last().map_or(0, |r| r.0);
        let url = format!("{}/api/v1/events", lock(&base).clone());
        let request = http
            .get(url)
            .bearer_auth(&token)
            .header("Last-Event-ID", last.to_string())
            .send();
        let response = tokio::select! {
            r = request => r,
            _ = stopping.changed() => return,
        };
        match response {
            Ok(response) if response.status().is_success() => {
                *lock(&connects) += 1;
                read(response, &received, &mut stopping).await;
            }
            // Down or restarting: try again shortly, until stopped.
            _ => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stopping.changed() => return,
                }
            }
        }
    }
}

/// Reads messages until the connection ends or the follower is stopped.
async fn read(
    mut response: reqwest::Response,
    received: &Mutex<Vec<Received>>,
    stopping: &mut watch::Receiver<bool>,
) {
    let mut buffer = String::new();
    loop {
        let chunk = tokio::select! {
            c = response.chunk() => c,
            _ = stopping.changed() => return,
        };
        let Ok(Some(chunk)) = chunk else { return };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if let Some(parsed) = parse(&message) {
                lock(received).push(parsed);
            }
        }
    }
}

/// An SSE message with an id, event and JSON data; `None` for keep-alives and the rest.
fn parse(message: &str) -> Option<Received> {
    let field = |name: &str| {
        message
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let id = field("id:")?.parse().ok()?;
    let event = field("event:")?.to_owned();
    let data = serde_json::from_str(field("data:")?).ok()?;
    Some((id, event, data))
}
