//! The journal writer: the one task that owns the core, with group commit.
//!
//! Inputs queue on a bounded channel. The writer takes everything waiting (up to `batch_max`),
//! stamps it with the clock, applies and commits it as one transaction, then releases the
//! actions and answers each submitter. A source that must not acknowledge an input before it is
//! durable (a PLC handshake) awaits that answer.

use std::time::Duration;

use chrono::Utc;
use takt_core::{Action, Input};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Applied, Journaled};

/// Capacity of the submission queue: a full queue makes submitters wait (back-pressure).
const QUEUE_CAPACITY: usize = 4_096;
/// Capacity of the action fan-out; a receiver that lags this far behind is told it lagged.
const ACTIONS_CAPACITY: usize = 16_384;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("the controller is shutting down")]
    Closed,
    #[error("the journal could not commit: {0}")]
    Journal(String),
}

struct Submission {
    input: Input,
    reply: oneshot::Sender<Result<Applied, SubmitError>>,
}

/// Cheap, cloneable way in to the writer. Dropping every handle stops it.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Submission>,
    actions: broadcast::Sender<Action>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("input", &self.input)
            .finish()
    }
}

/// An input queued for the journal; await it to learn when it is durable.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<Applied, SubmitError>>);

impl Pending {
    pub async fn durable(self) -> Result<Applied, SubmitError> {
        self.0.await.unwrap_or(Err(SubmitError::Closed))
    }
}

impl Handle {
    /// Queue an input (waiting while the queue is full) without waiting for its commit.
    pub async fn enqueue(&self, input: Input) -> Result<Pending, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Submission { input, reply })
            .await
            .map_err(|_| SubmitError::Closed)?;
        Ok(Pending(rx))
    }

    /// Queue an input and wait until it is journaled.
    pub async fn submit(&self, input: Input) -> Result<Applied, SubmitError> {
        self.enqueue(input).await?.durable().await
    }

    /// Actions released after their inputs committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Action> {
        self.actions.subscribe()
    }
}

/// Start the writer task. It ends, returning the runtime, once every [`Handle`] is dropped.
pub fn spawn(mut journaled: Journaled, batch_max: usize) -> (Handle, JoinHandle<Journaled>) {
    let (tx, mut rx) = mpsc::channel::<Submission>(QUEUE_CAPACITY);
    let (actions, _) = broadcast::channel(ACTIONS_CAPACITY);
    let handle = Handle {
        tx,
        actions: actions.clone(),
    };
    let task = tokio::spawn(async move {
        let batch_max = batch_max.max(1);
        let mut batch: Vec<Submission> = Vec::with_capacity(batch_max);
        loop {
            let wake = journaled.core().poll_timeout().map(|t| {
                let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tokio::time::Instant::now() + wait
            });
            let tick = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let mut timer_fired = false;
            tokio::select! {
                got = rx.recv_many(&mut batch, batch_max) => {
                    if got == 0 {
                        break;
                    }
                }
                () = tick => timer_fired = true,
            }
            let now = Utc::now();
            let mut inputs: Vec<_> = batch.iter().map(|s| (now, s.input.clone())).collect();
            if timer_fired {
                inputs.push((now, Input::Tick));
            }
            let result = journaled.apply(inputs).await;
            match result {
                Ok((applied, released)) => {
                    for action in released {
                        // No receiver is fine: nobody is listening yet.
                        let _ = actions.send(action);
                    }
                    for (sub, applied) in batch.drain(..).zip(applied) {
                        let _ = sub.reply.send(Ok(applied));
                    }
                }
                Err(e) => {
                    let err = SubmitError::Journal(e.to_string());
                    for sub in batch.drain(..) {
                        let _ = sub.reply.send(Err(err.clone()));
                    }
                }
            }
        }
        journaled
    });
    (handle, task)
}
