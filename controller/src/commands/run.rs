//! `takt run`: the controller service.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use takt::bridge::Bridge;
use takt::runtime::{Journaled, writer};
use takt::store::Store;

/// How often a progress line is logged while anything happens.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// The period over which a flood of one alarm is summed up in one log line.
const ALARM_LOG_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) async fn run(config_path: &Path) -> Result<(), ExitCode> {
    let cfg = super::load(config_path)?;
    serve(cfg).await.map_err(|e| super::fail(&e))
}

async fn serve(cfg: takt::config::Config) -> anyhow::Result<()> {
    let url = super::store_url(&cfg);
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening the store at {url}"))?;
    let plant = Arc::new(cfg.plant.clone());
    let started = std::time::Instant::now();
    let (journaled, stats) = Journaled::open(plant.clone(), store, cfg.controller.snapshot_every)
        .await
        .context("rebuilding the state from the journal")?;
    tracing::info!(
        backend = journaled.store().backend(),
        snapshot = ?stats.snapshot_id,
        replayed = stats.replayed,
        last_journal_id = stats.last_id,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "state rebuilt from the journal"
    );
    for line in &plant.config.lines {
        for point in &line.broadcast_points {
            let expected = journaled.core().expected_seq(&line.id, &point.id);
            tracing::info!(line = %line.id, point = %point.id, expected = ?expected.map(takt_core::SeqNo::value), "broadcast point ready");
        }
    }
    let (handle, task) = writer::spawn(journaled, cfg.controller.batch_max);
    let progress = takt::progress::spawn(&handle, PROGRESS_EVERY);
    let alarm_log = takt::alarm_log::spawn(&handle, ALARM_LOG_PERIOD);
    let bridge = Bridge::start(&cfg, handle.clone())
        .await
        .context("starting the plant connections")?;
    let http_addr = super::http_addr(&cfg.controller);
    let listener = tokio::net::TcpListener::bind(&http_addr)
        .await
        .with_context(|| format!("listening for HTTP on {http_addr}"))?;
    let bound = listener.local_addr().context("reading the HTTP address")?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(takt::http::serve(
        listener,
        takt::http::app(handle.clone(), bridge.health()),
        async {
            let _ = http_stopped.await;
        },
    ));
    let stop = shutdown_signal()?;
    tracing::info!(
        plant = %plant.config.plant.name,
        status = %format!("http://{bound}/status"),
        "controller running; Ctrl-C or SIGTERM stops it"
    );
    stop.await;
    tracing::info!("stopping: closing plant connections, HTTP requests and the journal");
    bridge.stop().await;
    progress.abort();
    alarm_log.abort();
    let _ = stop_http.send(());
    http.await.context("HTTP task")?.context("serving HTTP")?;
    drop(handle);
    let mut journaled = task.await.context("journal writer task")?;
    journaled.snapshot().await.context("final snapshot")?;
    journaled.store().close().await;
    tracing::info!(last_journal_id = journaled.last_id(), "stopped cleanly");
    Ok(())
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
