//! The outbox as a stream, resumable by event id: Server-Sent Events at `GET /api/v1/events`
//! and the same events over a WebSocket at `GET /api/v1/events/ws`.
//!
//! A client names where it stopped (`Last-Event-ID`, as browsers resend it, or `?after=`); it
//! gets the backlog from the outbox, then live events as their commits become durable. The
//! switch loses nothing and doubles nothing: the live subscription is opened *before* the
//! backlog is read, so every event is in one or the other (or both, and then sent once, by id).
//! A client too slow to keep up (its live buffer overflows) is told so and closed; it resumes
//! from its last id like any other reconnect, and nobody else waits for it. A cursor older than
//! what the outbox keeps (see `retention`) is answered `410 Gone`, never with a silent gap.
//! Both transports are one [`Follow`]; they differ only in framing.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use takt_core::OutboxEvent;
use takt_core::identity::Scope;
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::problem::{ApiError, StreamProblems};
use crate::runtime::Published;
use crate::store::{EventReader, Store};

/// How many outbox rows a backlog read takes at a time.
const BACKLOG_PAGE: u32 = 500;
/// A comment line this often keeps proxies and clients from timing an idle stream out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event as a stream sends it (the `data` of each SSE message; its `id` and `event` are the
/// same id and kind).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The tenant it concerns; absent for the plant's own.
    pub tenant: Option<String>,
    /// `call_created`, `call_changed`, `call_cancelled`, `rack_closed`, `rack_moved`,
    /// `line_state`, `takt_status`, `supplier_takt_status`, `coverage`, `alarm_changed`.
    pub kind: String,
    /// The event's content (the call, rack, line status, takt status, coverage or alarm), with
    /// `event` = kind.
    #[schema(value_type = Object)]
    pub payload: Json,
}

impl EventView {
    fn of(event: &OutboxEvent) -> Self {
        Self {
            id: event_id(event),
            at: event.at,
            tenant: event.tenant.clone(),
            kind: event.event.name().to_owned(),
            payload: serde_json::to_value(&event.event).unwrap_or(Json::Null),
        }
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An event's id as the API shows it (ids never reach `i64::MAX`: they count events).
fn event_id(event: &OutboxEvent) -> i64 {
    i64::try_from(event.id).unwrap_or(i64::MAX)
}

/// An event ready to send: its id, kind and JSON (an [`EventView`]), the JSON shared by every
/// client a live event goes to.
struct Wire {
    id: i64,
    kind: String,
    json: Arc<str>,
}

impl Wire {
    fn of_view(view: &EventView) -> Self {
        Self {
            id: view.id,
            kind: view.kind.clone(),
            json: Arc::from(view.encode()),
        }
    }

    fn of_published(published: &Published) -> Self {
        let event = &published.event;
        Self {
            id: event_id(event),
            kind: event.event.name().to_owned(),
            json: published.wire(|e| EventView::of(e).encode()),
        }
    }

    fn sse(&self) -> Event {
        Event::default()
            .id(self.id.to_string())
            .event(self.kind.as_str())
            .data(&*self.json)
    }

    fn ws(&self) -> Message {
        Message::text(&*self.json)
    }
}

/// Where to start.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Resume after this event id (`Last-Event-ID` wins when both are given); `0` for the
    /// whole outbox. Absent: live events only.
    pub after: Option<i64>,
}

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(events_ws))
}

/// The cursor a client gave, if any.
fn cursor(headers: &HeaderMap, uri: &Uri) -> Result<Option<i64>, ApiError> {
    if let Some(value) = headers.get("last-event-id") {
        let id = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|id| *id >= 0)
            .ok_or_else(|| ApiError::Invalid {
                field: "Last-Event-ID".to_owned(),
                detail: "an event id (a number, 0 or more)".to_owned(),
            })?;
        return Ok(Some(id));
    }
    let params =
        axum::extract::Query::<StreamParams>::try_from_uri(uri).map_err(|e| ApiError::Invalid {
            field: "after".to_owned(),
            detail: e.body_text(),
        })?;
    match params.after {
        Some(after) if after < 0 => Err(ApiError::Invalid {
            field: "after".to_owned(),
            detail: "an event id (a number, 0 or more)".to_owned(),
        }),
        other => Ok(other),
    }
}

/// Refuses a cursor whose next events the outbox no longer keeps.
pub(super) async fn still_kept(store: &Store, after: i64) -> Result<(), ApiError> {
    match store.oldest_event_id().await? {
        Some(oldest) if after < oldest - 1 => Err(ApiError::CursorGone { after, oldest }),
        _ => Ok(()),
    }
}

/// Everything a stream needs before its first message: the caller's reader, a checked cursor,
/// a place under the stream limit, and the live subscription (opened before any backlog read).
async fn follow(state: &ApiState, caller: &Caller, after: Option<i64>) -> Result<Follow, ApiError> {
    let reader = match &caller.scope {
        Scope::Tenant { tenant } => EventReader::Tenant(tenant.clone()),
        Scope::Role { .. } => EventReader::Plant,
    };
    if let Some(after) = after {
        still_kept(&state.store, after).await?;
    }
    let permit = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Unavailable("too many streams open; retry shortly"))?;
    // Subscribe first: whatever commits from now on is in `live`, the rest in the outbox.
    let live = state.writer.subscribe_events();
    Ok(Follow {
        store: state.store.clone(),
        reader,
        live,
        closing: state.closing.clone(),
        sent: after,
        backlog: VecDeque::new(),
        reading_backlog: after.is_some(),
        caught_up: false,
        ended: false,
        _permit: permit,
    })
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    summary = "The event stream (SSE): backlog from the cursor, then live; resume with Last-Event-ID",
    params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received")),
    responses((status = 200, description = "`text/event-stream`; each message's data is an EventView; \
            a last `closed` message says why the server ended the stream",
            content_type = "text/event-stream", body = EventView), StreamProblems),
    security(("bearer" = [])))]
async fn events(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = cursor(&headers, &uri)?;
    let follow = follow(&state, &caller, after).await?;
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        let message = match follow.next().await? {
            Next::Event(wire) => wire.sse(),
            Next::Closed(why) => Event::default().event("closed").data(why.reason()),
        };
        Some((Ok(message), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

#[utoipa::path(get, path = "/api/v1/events/ws", tag = "events",
    summary = "The event stream over a WebSocket: the same events and cursor as the SSE stream",
    description = "Each text message is one EventView. Resume with `?after=` the last id received. \
        The server pings every 15 s and ends the stream with a close frame whose reason says why \
        (1013: too slow, reconnect with your cursor; 4410: the events after your \
        cursor are no longer kept; 1001: the controller is stopping).",
    params(StreamParams),
    responses((status = 101, description = "Switching to the WebSocket protocol"), StreamProblems),
    security(("bearer" = [])))]
async fn events_ws(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let after = cursor(&HeaderMap::new(), &uri)?;
    let follow = follow(&state, &caller, after).await?;
    let upgrade = upgrade.map_err(|e| ApiError::Malformed {
        detail: format!("not a WebSocket handshake: {}", e.body_text()),
    })?;
    Ok(upgrade.on_upgrade(move |socket| relay(socket, follow)))
}

/// Sends a follower's events down a WebSocket until either side ends it. What the client sends
/// is read only to answer pings and notice its close.
async fn relay(mut socket: WebSocket, mut follow: Follow) {
    let mut ping = tokio::time::interval(KEEP_ALIVE);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        // One `next` awaited across the client's frames and the pings, so a chatty client
        // does not restart a backlog read each time it speaks.
        let next = {
            let mut next = std::pin::pin!(follow.next());
            loop {
                tokio::select! {
                    next = &mut next => break next,
                    received = socket.recv() => match received {
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                        Some(Ok(_)) => {}
                    },
                    _ = ping.tick() => {
                        if socket.send(Message::Ping(Default::default())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        let message = match next {
            Some(Next::Event(wire)) => wire.ws(),
            Some(Next::Closed(why)) => close(why.ws_code(), why.reason()),
            None => close(close_code::AWAY, "the controller is stopping"),
        };
        let last = matches!(message, Message::Close(_));
        if socket.send(message).await.is_err() || last {
            return;
        }
    }
}

fn close(code: u16, why: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: why.into(),
    }))
}

/// What a follower yields.
enum Next {
    Event(Wire),
    /// The server ends the stream, and says why: the last message.
    Closed(Closing),
}

/// Why the server ends a stream.
#[derive(Clone, Copy)]
enum Closing {
    /// The client fell behind its live buffer: reconnecting with its cursor resumes.
    TooSlow,
    /// The outbox no longer keeps what follows the client's cursor: reconnecting gets 410.
    CursorGone,
    /// The outbox could not be read: reconnecting later resumes.
    Unreadable,
}

impl Closing {
    fn reason(self) -> &'static str {
        match self {
            Closing::TooSlow => "too slow: closed; reconnect with your last event id",
            Closing::CursorGone => {
                "the events after your cursor are no longer kept; \
                 read the current state from the lists, then follow live"
            }
            Closing::Unreadable => "the outbox cannot be read; reconnect with your cursor",
        }
    }

    /// The WebSocket close code: 1013 (try again later) where reconnecting resumes, 4410 (the
    /// application's own "gone") where it cannot.
    fn ws_code(self) -> u16 {
        match self {
            Closing::TooSlow | Closing::Unreadable => close_code::AGAIN,
            Closing::CursorGone => 4410,
        }
    }
}

/// One client's position in the outbox.
struct Follow {
    store: Store,
    reader: EventReader,
    live: broadcast::Receiver<Arc<Published>>,
    closing: watch::Receiver<bool>,
    /// The id of the last event sent (or the client's cursor); `None`: live only, nothing yet.
    sent: Option<i64>,
    backlog: VecDeque<EventView>,
    reading_backlog: bool,
    /// Just caught up from the outbox: the live buffer went unread meanwhile, so a lag now
    /// means the backlog was long, not that the client is slow.
    caught_up: bool,
    ended: bool,
    /// Counts against the limit of open streams until the stream is dropped.
    _permit: OwnedSemaphorePermit,
}

impl Follow {
    /// The next message to send; `None` ends the stream without a word (the controller
    /// stops). Cancel-safe: nothing is taken from the backlog or the subscription but what is
    /// returned.
    async fn next(&mut self) -> Option<Next> {
        if self.ended || *self.closing.borrow() {
            return None;
        }
        loop {
            if let Some(view) = self.backlog.pop_front() {
                self.sent = Some(view.id);
                return Some(Next::Event(Wire::of_view(&view)));
            }
            if self.reading_backlog {
                let after = self.sent.unwrap_or(0);
                let read = async {
                    let page: Vec<EventView> = self
                        .store
                        .events_after(&self.reader, after, BACKLOG_PAGE)
                        .await?;
                    // Pruned while this client read its way up: what comes next may be gone.
                    still_kept(&self.store, after).await?;
                    Ok::<_, ApiError>(page)
                };
                match read.await {
                    Ok(page) if page.is_empty() => {
                        self.reading_backlog = false;
                        self.caught_up = true;
                    }
                    Ok(page) => self.backlog.extend(page),
                    Err(ApiError::CursorGone { .. }) => {
                        return self.end(Closing::CursorGone);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "event stream: cannot read the outbox");
                        return self.end(Closing::Unreadable);
                    }
                }
                continue;
            }
            let received = tokio::select! {
                received = self.live.recv() => received,
                _ = self.closing.changed() => return None,
            };
            match received {
                Ok(published) => {
                    self.caught_up = false;
                    let tenant = published.event.tenant.as_deref();
                    let theirs = match &self.reader {
                        EventReader::Plant => true,
                        EventReader::Tenant(t) => tenant == Some(t.as_str()),
                    };
                    let id = event_id(&published.event);
                    if theirs && self.sent.is_none_or(|sent| id > sent) {
                        self.sent = Some(id);
                        return Some(Next::Event(Wire::of_published(&published)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) if self.caught_up => {
                    // What went by while it read the outbox is in the outbox: read on there.
                    self.live = self.live.resubscribe();
                    self.reading_backlog = true;
                    self.caught_up = false;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "event stream client too slow; closing it");
                    return self.end(Closing::TooSlow);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// A last message saying why the stream ends.
    fn end(&mut self, why: Closing) -> Option<Next> {
        self.ended = true;
        Some(Next::Closed(why))
    }
}
