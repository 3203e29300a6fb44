//! `takt run`: the controller service.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use takt::app::App;

pub(crate) async fn run(config_path: &Path) -> Result<(), ExitCode> {
    let cfg = super::load(config_path)?;
    serve(cfg).await.map_err(|e| super::fail(&e))
}

async fn serve(cfg: takt::config::Config) -> anyhow::Result<()> {
    // Bound before anything starts, so a port in use fails before the plant is touched.
    let http_addr = &cfg.controller.http_addr;
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("listening for HTTP on {http_addr}"))?;
    let app = App::build(cfg).await?;
    app.run(listener, shutdown_signal()?).await
}

/// Ctrl-C, or SIGTERM from a service manager. The handlers are installed when this returns,
/// not when the future is first polled: a supervisor may signal the moment we say we are
/// running, and a signal that arrives before its handler kills the process uncleanly.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    })
}
