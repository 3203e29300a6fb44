//! The controller's HTTP surface: status and health for operations.
//!
//! `app` builds the router from a writer handle, so tests call it without a socket; `serve`
//! runs it on a listener until the shutdown future completes.

use std::future::Future;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::runtime::writer::Handle;

/// `GET /status`: the plant as of the last commit. `GET /healthz`: the process answers.
/// `GET /readyz`: the journal writer is running and taking inputs.
pub fn app(writer: Handle) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(writer)
}

async fn status(State(writer): State<Handle>) -> impl IntoResponse {
    Json(writer.status())
}

async fn ready(State(writer): State<Handle>) -> impl IntoResponse {
    if writer.is_running() {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the journal writer has stopped",
        )
    }
}

/// Serve `app` on `listener` until `shutdown` completes, then finish open requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
