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
use takt_core::identity::Identities;
use takt_core::{Action, Input};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{Answer, Applied, Journaled, Published, Staged, Submitted};
use crate::status::Status;
use crate::store::Origin;
use crate::store::{Store, StoreError};

/// Capacity of the submission queue: a full queue makes submitters wait (back-pressure).
const QUEUE_CAPACITY: usize = 4_096;
/// Capacity of the action fan-out; a receiver that lags this far behind is told it lagged.
const ACTIONS_CAPACITY: usize = 16_384;
/// Capacity of the committed-event fan-out: how far a stream client may fall behind before it
/// is closed (it then resumes from the outbox by its last event id).
const EVENTS_CAPACITY: usize = 4_096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("the controller is shutting down")]
    Closed,
    #[error("the journal could not commit: {0}")]
    Journal(String),
    #[error("this idempotency key was used for a different request (journal entry {id})")]
    KeyReused { id: i64 },
}

struct Submission {
    input: Input,
    origin: Origin,
    reply: Reply,
}

/// Cheap, cloneable way in to the writer. [`Handle::close`] (or dropping every handle) stops it.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Submission>,
    actions: broadcast::Sender<Action>,
    events: broadcast::Sender<Arc<Published>>,
    status: watch::Receiver<Arc<Status>>,
    identities: watch::Receiver<Arc<Identities>>,
    /// Set once by [`Handle::close`]: request handlers and streams hold handles of their own,
    /// so the writer cannot wait for the last one to drop before it stops.
    close: Arc<watch::Sender<bool>>,
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
pub struct Pending(oneshot::Receiver<Answer>);

impl Pending {
    pub async fn durable(self) -> Result<Applied, SubmitError> {
        self.0.await.unwrap_or(Err(SubmitError::Closed))
    }
}

impl Handle {
    /// Queue an input (waiting while the queue is full) without waiting for its commit.
    pub async fn enqueue(&self, input: Input) -> Result<Pending, SubmitError> {
        self.enqueue_from(input, Origin::default()).await
    }

    /// [`Handle::enqueue`] for an input someone gave (an API caller): journaled with `origin`,
    /// and answered from the earlier entry if its idempotency key was seen.
    pub async fn enqueue_from(&self, input: Input, origin: Origin) -> Result<Pending, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Submission {
                input,
                origin,
                reply,
            })
            .await
            .map_err(|_| SubmitError::Closed)?;
        Ok(Pending(rx))
    }

    /// Queue an input and wait until it is journaled.
    pub async fn submit(&self, input: Input) -> Result<Applied, SubmitError> {
        self.enqueue(input).await?.durable().await
    }

    /// [`Handle::submit`] with the caller's [`Origin`].
    pub async fn submit_from(&self, input: Input, origin: Origin) -> Result<Applied, SubmitError> {
        self.enqueue_from(input, origin).await?.durable().await
    }

    /// Actions released after their inputs committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Action> {
        self.actions.subscribe()
    }

    /// Outbox events, each announced once the commit that stored it is durable.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<Published>> {
        self.events.subscribe()
    }

    /// The writer task is still taking inputs.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// The API tokens as committed: what every request is authenticated against, without a
    /// read of the store (a seventh of the CPU under 200 command clients).
    pub fn identities(&self) -> Arc<Identities> {
        self.identities.borrow().clone()
    }

    /// The plant as of the last commit.
    pub fn status(&self) -> Arc<Status> {
        self.status.borrow().clone()
    }

    /// Stop taking inputs: what is queued is still journaled and answered, what comes later
    /// fails with [`SubmitError::Closed`], and the writer task ends after its last commit.
    pub fn close(&self) {
        self.close.send_replace(true);
    }
}

/// Where a submitter waits for its input's journal id and outcome.
type Reply = oneshot::Sender<Answer>;

/// One per input staged, in staging order, so that the n-th answer reaches the n-th submitter:
/// `None` for the inputs nobody waits for (the writer's own ticks).
type Replies = Vec<Option<Reply>>;

/// A staged batch committing in the background, with the submitters waiting for it.
type InFlight = (JoinHandle<(Staged, Result<(), StoreError>)>, Replies);

/// Start the writer task. It ends, returning the runtime, once [`Handle::close`] is called or
/// every [`Handle`] is dropped.
pub fn spawn(journaled: Journaled, batch_max: usize) -> (Handle, JoinHandle<Journaled>) {
    let (tx, rx) = mpsc::channel::<Submission>(QUEUE_CAPACITY);
    let (actions, _) = broadcast::channel(ACTIONS_CAPACITY);
    let (events, _) = broadcast::channel(EVENTS_CAPACITY);
    let (status_tx, status) = watch::channel(Arc::new(journaled.status()));
    let (identities_tx, identities) =
        watch::channel(Arc::new(journaled.core().identities().clone()));
    let (close, closing) = watch::channel(false);
    let handle = Handle {
        tx,
        actions: actions.clone(),
        events: events.clone(),
        status,
        identities,
        close: Arc::new(close),
    };
    let out = Outputs {
        actions,
        events,
        status: status_tx,
        identities: identities_tx,
    };
    let task = tokio::spawn(run(journaled, rx, closing, out, batch_max.max(1)));
    (handle, task)
}

/// Where committed batches are announced.
#[derive(Debug)]
struct Outputs {
    actions: broadcast::Sender<Action>,
    events: broadcast::Sender<Arc<Published>>,
    status: watch::Sender<Arc<Status>>,
    identities: watch::Sender<Arc<Identities>>,
}

async fn run(
    mut journaled: Journaled,
    mut rx: mpsc::Receiver<Submission>,
    mut closing: watch::Receiver<bool>,
    out: Outputs,
    batch_max: usize,
) -> Journaled {
    let mut in_flight: Option<InFlight> = None;
    // Inputs staged behind the commit in flight, with their submitters: the next commit.
    let mut next: Option<(Staged, Replies)> = None;
    // A snapshot being encoded and saved beside the commits; at most one at a time.
    let mut snapshotting: Option<JoinHandle<()>> = None;
    let mut arrived: Vec<Submission> = Vec::with_capacity(batch_max);
    let mut taking = true;
    let mut closed = false;
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
                    let (inputs, replies): (Vec<_>, Replies) = arrived
                        .drain(..)
                        .map(|s| {
                            let submitted = Submitted {
                                at: now,
                                input: s.input,
                                origin: s.origin,
                            };
                            (submitted, Some(s.reply))
                        })
                        .unzip();
                    stage(&mut journaled, &mut next, inputs, replies);
                }
            }
            () = tick, if taking => {
                let tick = Submitted::plant(Utc::now(), Input::TICK);
                stage(&mut journaled, &mut next, vec![tick], vec![None]);
            }
            // Closed: refuse new submissions; `recv_many` drains what is queued, then ends.
            _ = closing.changed(), if !closed => {
                closed = true;
                rx.close();
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
    next: &mut Option<(Staged, Replies)>,
    inputs: Vec<Submitted>,
    replies: Replies,
) {
    let (staged, waiting) = next.get_or_insert_with(Default::default);
    journaled.stage_onto(staged, inputs);
    waiting.extend(replies);
}

/// Announce a finished commit: release its actions, answer its submitters and start saving its
/// snapshot, if one is due and none is being saved.
fn finish(
    done: Result<(Staged, Result<(), StoreError>), tokio::task::JoinError>,
    subs: Replies,
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
    // Before any answer: a revocation holds for the next request its issuer sends.
    if let Some(identities) = staged.take_identities() {
        out.identities.send_replace(identities);
    }
    if let Some(due) = staged.take_snapshot() {
        if snapshotting.as_ref().is_some_and(|s| !s.is_finished()) {
            tracing::debug!("the previous snapshot is still being saved; skipping this one");
        } else {
            let store = store.clone();
            *snapshotting = Some(tokio::spawn(async move { due.save(&store).await }));
        }
    }
    for event in staged.take_events() {
        // No stream open is fine: the outbox has it.
        let _ = out.events.send(event);
    }
    let (answers, released) = staged.into_parts();
    for action in released {
        // No receiver is fine: nobody is listening yet.
        let _ = out.actions.send(action);
    }
    answer(subs, answers);
    Ok(())
}

/// Each submitter gets the answer of its own input.
fn answer(replies: Replies, answers: Vec<Answer>) {
    debug_assert_eq!(
        replies.len(),
        answers.len(),
        "one reply slot per staged input"
    );
    for (reply, answer) in replies.into_iter().zip(answers) {
        if let Some(reply) = reply {
            let _ = reply.send(answer);
        }
    }
}

fn fail(replies: Replies, err: &SubmitError) {
    for reply in replies.into_iter().flatten() {
        let _ = reply.send(Err(err.clone()));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use takt_core::AlarmInput;

    use takt_core::Outcome;

    use super::*;

    async fn journaled() -> Journaled {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("core/tests/fixtures/small.toml");
        let text = std::fs::read_to_string(&path).expect("fixture");
        let cfg = crate::config::parse(&path, &text).expect("fixture config");
        let store = Store::open("sqlite::memory:").await.expect("store");
        Journaled::open(Arc::new(cfg.plant), store, 0)
            .await
            .expect("journal")
            .0
    }

    /// A tick staged ahead of a submission in the same batch must not shift the answers: each
    /// submitter hears the journal id of its own input.
    #[tokio::test]
    async fn a_tick_staged_first_does_not_shift_the_answers() {
        let mut journaled = journaled().await;
        let mut next = None;
        let now = Utc::now();
        stage(
            &mut journaled,
            &mut next,
            vec![Submitted::plant(now, Input::TICK)],
            vec![None],
        );
        let (reply, answered) = oneshot::channel();
        let unknown = Input::Alarms(AlarmInput::Acknowledge {
            alarm: "no_such_alarm".into(),
        });
        stage(
            &mut journaled,
            &mut next,
            vec![Submitted::plant(now, unknown)],
            vec![Some(reply)],
        );
        let (mut staged, replies) = next.expect("staged");
        journaled.seal(&mut staged);
        staged.commit(journaled.store()).await.expect("commit");
        let (answers, _) = staged.into_parts();
        answer(replies, answers);
        let applied = answered.await.expect("answered").expect("journaled");
        assert_eq!(
            applied.id, 2,
            "the tick is entry 1, the acknowledgement entry 2"
        );
        assert!(
            matches!(applied.outcome, Outcome::Rejected(_)),
            "{applied:?}"
        );
    }
}
