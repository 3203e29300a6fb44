//! The API's one error type, answered as RFC 9457 `application/problem+json`.
//!
//! Every variant says what the client can do about it; nothing internal (SQL, paths, stack) is
//! ever in a body. Client mistakes are logged at DEBUG, the server's own at ERROR.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use problem_details::ProblemDetails;
use serde::Serialize;
use utoipa::ToSchema;

use crate::runtime::writer::SubmitError;
use crate::store::StoreError;

/// Where our problem types live (`type` of each problem): the API's own docs.
const TYPE_BASE: &str = "https://takt.invalid/problems/";

/// An API error; see the variants for the status each gives.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no token, a malformed one, an unknown or a revoked one (not told apart: a guesser
    /// learns nothing).
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// 403: the token is good but its scope does not reach this.
    #[error("this token's scope does not allow {0}")]
    Forbidden(&'static str),
    /// 404: nothing by that id (or nothing this token may see by that id).
    #[error("no {what} {id:?}")]
    NotFound { what: &'static str, id: String },
    /// 400: the body is not JSON, or not an object.
    #[error("{detail}")]
    Malformed { detail: String },
    /// 422: a field is missing, of the wrong type, or out of range.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    /// 422: the core refused the command (journaled as rejected, nothing changed).
    #[error("{reason}")]
    Refused {
        reason: String,
        journal_id: i64,
        /// The field of the body the core found at fault, when it names one.
        field: Option<String>,
    },
    /// 409: the `Idempotency-Key` was used for a different request.
    #[error("this Idempotency-Key was used for a different request (journal entry {journal_id})")]
    KeyReused { journal_id: i64 },
    /// 410: a stream cursor older than what the outbox keeps: the events after it are gone.
    #[error(
        "the outbox no longer keeps the events after {after} (the oldest kept is {oldest}): \
         read the current state from the lists, then follow the stream from there"
    )]
    CursorGone { after: i64, oldest: i64 },
    /// 429: too many requests for this token; retry after the given seconds.
    #[error("too many requests for this token")]
    RateLimited { retry_after_s: u64 },
    /// 503: too many requests in flight, a request that took too long, or a controller
    /// shutting down.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 500: our fault; the body says only that, the log says what.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error answer (what the OpenAPI document shows).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The body field at fault, as a dotted path (`until`, `slots[2].part`), for 422s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The journal entry that recorded a refused command, or that first used a reused key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<i64>,
    /// For a cursor the outbox no longer keeps (410): the oldest event id it does keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_event_id: Option<i64>,
}

/// The problems every command may answer, as the OpenAPI document lists them (one list for
/// all commands: a client handles them alike, and a command without a body never gives 400).
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "exists to be documented; answers are built as `ApiError`"
)]
pub enum CommandProblems {
    /// The body is not JSON, or not an object.
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(Problem),
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token's scope does not allow this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// Nothing by that id.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The Idempotency-Key was used for a different request.
    #[response(status = 409, content_type = "application/problem+json")]
    KeyReused(Problem),
    /// A field is wrong (named in `field`), or the core refused the command (`journal_id`).
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Too many requests for this token; see Retry-After.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// Too many requests in flight, too slow, or shutting down.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problems every read may answer.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "exists to be documented; answers are built as `ApiError`"
)]
pub enum ReadProblems {
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token's scope does not allow this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// A query parameter is wrong (named in `field`).
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Too many requests for this token; see Retry-After.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// Too many requests (or streams) open, too slow, or shutting down.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problems a read of one thing by its id may answer: those of every read, and 404.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "exists to be documented; answers are built as `ApiError`"
)]
pub enum ItemReadProblems {
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token's scope does not allow this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such line or item, or not the caller's (a tenant learns nothing of others').
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// A query parameter is wrong (named in `field`).
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Too many requests for this token; see Retry-After.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// Too many requests open, too slow, or shutting down.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problems an event stream may answer before it starts.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "exists to be documented; answers are built as `ApiError`"
)]
pub enum StreamProblems {
    /// Not a WebSocket handshake (the WebSocket route only).
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(Problem),
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The cursor is older than what the outbox keeps (`oldest_event_id` says what it keeps).
    #[response(status = 410, content_type = "application/problem+json")]
    CursorGone(Problem),
    /// The cursor is not an event id (named in `field`).
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Too many requests for this token; see Retry-After.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// Too many streams open, or shutting down.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The extension members our problems carry.
#[derive(Debug, Serialize)]
struct Extensions {
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oldest_event_id: Option<i64>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed-body"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-field"),
            ApiError::Refused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            ApiError::KeyReused { .. } => (StatusCode::CONFLICT, "idempotency-key-reused"),
            ApiError::CursorGone { .. } => (StatusCode::GONE, "cursor-gone"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.parts();
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "API request failed"),
            other => {
                tracing::debug!(error = %other, status = status.as_u16(), "API request refused");
            }
        }
        let (field, journal_id) = match &self {
            ApiError::Invalid { field, .. } => (Some(field.clone()), None),
            ApiError::Refused {
                journal_id, field, ..
            } => (field.clone(), Some(*journal_id)),
            ApiError::KeyReused { journal_id } => (None, Some(*journal_id)),
            _ => (None, None),
        };
        let kind = format!("{TYPE_BASE}{kind}")
            .parse::<axum::http::Uri>()
            .unwrap_or_default();
        let details = ProblemDetails::from_status_code(status)
            .with_type(kind)
            .with_detail(self.to_string())
            .with_extensions(Extensions {
                field,
                journal_id,
                oldest_event_id: match &self {
                    ApiError::CursorGone { oldest, .. } => Some(*oldest),
                    _ => None,
                },
            });
        let mut response = details.into_response();
        if let ApiError::RateLimited { retry_after_s } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"takt\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor { cursor } => ApiError::Invalid {
                field: "after".to_owned(),
                detail: format!("{cursor:?} is not a cursor of this list"),
            },
            other => ApiError::Internal(format!("{other:#}")),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Closed => ApiError::Unavailable("the controller is shutting down"),
            SubmitError::KeyReused { id } => ApiError::KeyReused { journal_id: id },
            SubmitError::Journal(cause) => ApiError::Internal(cause),
        }
    }
}
