//! The controller's HTTP surface: status and health for operations.
//!
//! `app` builds the router from a writer handle, so tests call it without a socket; `serve`
//! runs it on a listener until the shutdown future completes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use serde::Serialize;

use crate::bridge::health::{ConnectionHealth, Health};
use crate::runtime::writer::Handle;
use crate::status::Status;

/// What the handlers share.
#[derive(Debug, Clone)]
struct AppState {
    writer: Handle,
    health: Arc<Health>,
}

/// `/status`: the committed plant state and the health of every plant connection.
#[derive(Debug, Serialize)]
struct StatusView<'a> {
    #[serde(flatten)]
    status: &'a Status,
    connections: BTreeMap<String, ConnectionHealth>,
}

/// `GET /status`: the plant as of the last commit, and the OPC UA sources and Modbus devices
/// with their connection state. `GET /healthz`: the process answers. `GET /readyz`: the
/// journal writer is running and taking inputs.
pub fn app(writer: Handle, health: Arc<Health>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(AppState { writer, health })
}

async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let status = state.writer.status();
    Json(
        serde_json::to_value(StatusView {
            status: &status,
            connections: state.health.snapshot(),
        })
        .unwrap_or_default(),
    )
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.writer.is_running() {
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
