//! The journal writer: the one task that owns the core, with group commit.
//!
//! Inputs queue on a bounded channel. The writer stamps each with the clock and stages it in the
//! core as soon as it arrives; everything staged commits as one transaction (up to `batch_max`
//! inputs), then the actions are released and each submitter answered. A source that must not
//! acknowledge an input before it is durable (a PLC handshake) awaits that answer.
//!
//! Pipelined: while one batch commits (on the database's thread), the inputs arriving meanwhile
//! are staged behind it, and they commit the moment it is done. So an input waits at most for
//! the rest of one commit and then its own. Commits stay strictly in order and each batch's
//! actions wait for its own commit; if a commit fails, what was staged behind it fails too and
//! the core is rebuilt from the store.

use std::time::Duration;

use chrono::Utc;
use std::sync::Arc;
use takt_core::{Action, Input};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{Applied, Journaled, Staged};
use crate::status::Status;
use crate::store::{Store, StoreError};

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
    reply: Reply,
}

/// Cheap, cloneable way in to the writer. Dropping every handle stops it.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Submission>,
    actions: broadcast::Sender<Action>,
    status: watch::Receiver<Arc<Status>>,
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

    /// The writer task is still taking inputs.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// The plant as of the last commit.
    pub fn status(&self) -> Arc<Status> {
        self.status.borrow().clone()
    }
}

/// Where a submitter waits for its input's journal id and outcome.
type Reply = oneshot::Sender<Result<Applied, SubmitError>>;

/// A staged batch committing in the background, with the submitters waiting for it.
type InFlight = (JoinHandle<(Staged, Result<(), StoreError>)>, Vec<Reply>);

/// Start the writer task. It ends, returning the runtime, once every [`Handle`] is dropped.
pub fn spawn(journaled: Journaled, batch_max: usize) -> (Handle, JoinHandle<Journaled>) {
    let (tx, rx) = mpsc::channel::<Submission>(QUEUE_CAPACITY);
    let (actions, _) = broadcast::channel(ACTIONS_CAPACITY);
    let (status_tx, status) = watch::channel(Arc::new(journaled.status()));
    let handle = Handle {
        tx,
        actions: actions.clone(),
        status,
    };
    let out = Outputs {
        actions,
        status: status_tx,
    };
    let task = tokio::spawn(run(journaled, rx, out, batch_max.max(1)));
    (handle, task)
}

/// Where committed batches are announced.
#[derive(Debug)]
struct Outputs {
    actions: broadcast::Sender<Action>,
    status: watch::Sender<Arc<Status>>,
}

async fn run(
    mut journaled: Journaled,
    mut rx: mpsc::Receiver<Submission>,
    out: Outputs,
    batch_max: usize,
) -> Journaled {
    let mut in_flight: Option<InFlight> = None;
    // Inputs staged behind the commit in flight, with their submitters: the next commit.
    let mut next: Option<(Staged, Vec<Reply>)> = None;
    // A snapshot being encoded and saved beside the commits; at most one at a time.
    let mut snapshotting: Option<JoinHandle<()>> = None;
    let mut arrived: Vec<Submission> = Vec::with_capacity(batch_max);
    let mut taking = true;
    loop {
        if in_flight.is_none()
            && let Some((mut staged, replies)) = next.take()
        {
            journaled.seal(&mut staged);
            let store = journaled.store().clone();
            let commit = tokio::spawn(async move {
                let result = staged.commit(&store).await;
                (staged, result)
            });
            in_flight = Some((commit, replies));
            // Let the commit start now: a task spawned from a worker waits in that worker's
            // LIFO slot, which no other worker may steal, so without this yield it would sit
            // there while we stage the next inputs and nothing would overlap.
            tokio::task::yield_now().await;
        }
        if !taking && in_flight.is_none() {
            break;
        }
        let room = batch_max.saturating_sub(next.as_ref().map_or(0, |(s, _)| s.len()));
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
        let committed = async {
            match in_flight.as_mut() {
                Some((commit, _)) => commit.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // A finished commit first: the next one can start the moment it is announced.
            biased;
            done = committed => {
                let (_, replies) = in_flight.take().expect("a commit was in flight");
                if let Err(e) = finish(done, replies, &out, &mut snapshotting, journaled.store()) {
                    // What is staged sits on top of a batch that never became durable.
                    if let Some((_, replies)) = next.take() {
                        fail(replies, &e);
                    }
                    tracing::error!(error = %e, "journal commit failed; rebuilding the core from the store");
                    if let Err(e) = journaled.recover().await {
                        tracing::error!(error = %e, "cannot rebuild the core; the writer stops");
                        break;
                    }
                }
            }
            // Stage what arrives at once, whether or not a commit is in flight: the core's
            // work then overlaps the commit, and the next commit takes everything that came
            // while this one ran (group commit without waiting for a batch to fill).
            got = rx.recv_many(&mut arrived, room), if taking && room > 0 => {
                if got == 0 {
                    taking = false;
                } else {
                    let now = Utc::now();
                    let (inputs, replies): (Vec<_>, Vec<Reply>) =
                        arrived.drain(..).map(|s| ((now, s.input), s.reply)).unzip();
                    stage(&mut journaled, &mut next, inputs, replies);
                }
            }
            () = tick, if taking => {
                stage(&mut journaled, &mut next, vec![(Utc::now(), Input::Tick)], Vec::new());
            }
        }
    }
    // The store may be closed once we return.
    if let Some(snapshot) = snapshotting
        && let Err(e) = snapshot.await
    {
        tracing::error!(error = %e, "snapshot task failed");
    }
    journaled
}

/// Stage `inputs` onto the next commit, starting one if there is none.
fn stage(
    journaled: &mut Journaled,
    next: &mut Option<(Staged, Vec<Reply>)>,
    inputs: Vec<(chrono::DateTime<Utc>, Input)>,
    replies: Vec<Reply>,
) {
    let (staged, waiting) = next.get_or_insert_with(Default::default);
    journaled.stage_onto(staged, inputs);
    waiting.extend(replies);
}

/// Announce a finished commit: release its actions, answer its submitters and start saving its
/// snapshot, if one is due and none is being saved.
fn finish(
    done: Result<(Staged, Result<(), StoreError>), tokio::task::JoinError>,
    subs: Vec<Reply>,
    out: &Outputs,
    snapshotting: &mut Option<JoinHandle<()>>,
    store: &Store,
) -> Result<(), SubmitError> {
    let (mut staged, result) = match done {
        Ok(done) => done,
        Err(e) => {
            let err = SubmitError::Journal(format!("commit task failed: {e}"));
            fail(subs, &err);
            return Err(err);
        }
    };
    if let Err(e) = result {
        let err = SubmitError::Journal(e.to_string());
        fail(subs, &err);
        return Err(err);
    }
    if let Some(status) = staged.status() {
        out.status.send_replace(Arc::new(status.clone()));
    }
    if let Some(due) = staged.take_snapshot() {
        if snapshotting.as_ref().is_some_and(|s| !s.is_finished()) {
            tracing::debug!("the previous snapshot is still being saved; skipping this one");
        } else {
            let store = store.clone();
            *snapshotting = Some(tokio::spawn(async move { due.save(&store).await }));
        }
    }
    let (applied, released) = staged.into_parts();
    for action in released {
        // No receiver is fine: nobody is listening yet.
        let _ = out.actions.send(action);
    }
    for (reply, applied) in subs.into_iter().zip(applied) {
        let _ = reply.send(Ok(applied));
    }
    Ok(())
}

fn fail(replies: Vec<Reply>, err: &SubmitError) {
    for reply in replies {
        let _ = reply.send(Err(err.clone()));
    }
}
