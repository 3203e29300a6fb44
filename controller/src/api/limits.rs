//! Limits on every route: body size, requests in flight, time per request, and a rate per
//! token. Each refusal is a problem+json answer, so a client sees the same shape of error
//! whatever stopped it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

use super::problem::ApiError;

/// The limits, as configured.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// Largest request body accepted.
    pub body_bytes: usize,
    /// Requests served at once; more are answered 503 at once rather than queued.
    pub in_flight: usize,
    /// A request not answered in this time is answered 503.
    pub request_timeout: Duration,
    /// Sustained requests per second per token, with a burst of as many.
    pub per_token_per_s: NonZeroU32,
    /// Event streams open at once.
    pub streams: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            in_flight: 512,
            request_timeout: Duration::from_secs(10),
            per_token_per_s: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            streams: 4_096,
        }
    }
}

/// The shared state of the limits.
#[derive(Debug)]
pub struct Limits {
    pub settings: LimitSettings,
    in_flight: Arc<Semaphore>,
    per_token: DefaultKeyedRateLimiter<String>,
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            in_flight: Arc::new(Semaphore::new(settings.in_flight)),
            per_token: governor::RateLimiter::keyed(Quota::per_second(settings.per_token_per_s)),
        }
    }

    /// One more request for `token_id`, or how long it must wait.
    pub fn admit(&self, token_id: &str) -> Result<(), ApiError> {
        self.per_token
            .check_key(&token_id.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::RateLimited {
                    retry_after_s: wait.as_secs().max(1),
                }
            })
    }
}

/// Middleware: at most `in_flight` requests at once, each answered within `request_timeout`.
pub async fn guard(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let Ok(_permit) = limits.in_flight.clone().try_acquire_owned() else {
        return ApiError::Unavailable("too many requests in flight; retry shortly").into_response();
    };
    match tokio::time::timeout(limits.settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable("the request took too long").into_response(),
    }
}
