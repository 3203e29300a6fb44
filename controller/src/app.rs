//! The controller, assembled: one [`App::build`] from a configuration and one [`App::run`] on a
//! listener until a shutdown future completes — what `takt run` does, and what every test that
//! needs a running controller does too, instead of wiring store, writer and bridge by hand.
//!
//! Start-up order is the invariant: the state is rebuilt from the journal before the writer
//! takes inputs, and the writer runs before any source or device is started, so nothing from
//! the plant arrives before the journal can take it. Stop order is the reverse: plant
//! connections first (lamps to their offline state), then HTTP, then the journal's last
//! commit and a final snapshot.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::limits::LimitSettings;
use crate::bridge::Bridge;
use crate::config::Config;
use crate::runtime::{Journaled, writer};
use crate::store::Store;

/// How often a progress line is logged while anything happens.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// The period over which a flood of one alarm is summed up in one log line.
const ALARM_LOG_PERIOD: Duration = Duration::from_secs(10);

/// A controller with its state rebuilt, its journal writer running and its plant connections
/// started; [`App::run`] serves HTTP and keeps it all up until shutdown.
#[derive(Debug)]
pub struct App {
    cfg: Config,
    /// The store's read side, for the API (the writer owns the commits).
    store: Store,
    writer: writer::Handle,
    writer_task: JoinHandle<Journaled>,
    bridge: Bridge,
    /// The progress and alarm log lines and the outbox's pruning, stopped with the app.
    background: Vec<JoinHandle<()>>,
}

impl App {
    /// Opens the configured store, rebuilds the state from its journal, starts the writer and
    /// then the plant connections. Returns once started, not once connected: sources and
    /// devices that are down are retried in the background and show as alarms.
    ///
    /// # Errors
    /// If the store cannot be opened or the journal not replayed, or a plant connection is
    /// configured in a way that cannot start.
    pub async fn build(cfg: Config) -> anyhow::Result<Self> {
        let database = cfg.controller.database();
        let url = database.url();
        let store = Store::open(url)
            .await
            .with_context(|| format!("opening the store at {url}"))?;
        let plant = Arc::new(cfg.plant.clone());
        let started = Instant::now();
        let (journaled, stats) =
            Journaled::open(plant.clone(), store, cfg.controller.snapshot_every)
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
        let store = journaled.store().clone();
        let (writer, writer_task) = writer::spawn(journaled, cfg.controller.batch_max);
        let background = vec![
            crate::progress::spawn(&writer, PROGRESS_EVERY),
            crate::alarm_log::spawn(&writer, ALARM_LOG_PERIOD),
            crate::retention::spawn(store.clone(), cfg.controller.outbox_keep_hours),
        ];
        let mut background = background;
        if let Some(dir) = &cfg.controller.deljit_dir {
            background.push(crate::deljit::folder::spawn(
                store.clone(),
                plant.clone(),
                &writer,
                dir.clone(),
            ));
        }
        let bridge = Bridge::start(&cfg, writer.clone())
            .await
            .context("starting the plant connections")?;
        Ok(Self {
            cfg,
            store,
            writer,
            writer_task,
            bridge,
            background,
        })
    }

    /// The way in to the journal (and the committed status), for whoever runs the app.
    pub fn writer(&self) -> writer::Handle {
        self.writer.clone()
    }

    /// Serves HTTP on `listener` until `shutdown` completes — or until the journal writer
    /// stops by itself (a store it cannot recover from), which is an error: a controller that
    /// cannot journal must not stay up looking alive. Then stops everything in order.
    ///
    /// # Errors
    /// If the writer died, HTTP failed, or the final snapshot could not be saved.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let Self {
            cfg,
            store,
            writer,
            mut writer_task,
            bridge,
            background,
        } = self;
        let bound: SocketAddr = listener.local_addr().context("reading the HTTP address")?;
        let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let (closing, streams_close) = tokio::sync::watch::channel(false);
        let http = tokio::spawn(crate::http::serve(
            listener,
            crate::http::app(writer.clone(), bridge.health()).merge(crate::api::router(
                writer.clone(),
                store,
                Arc::new(cfg.plant.clone()),
                LimitSettings::default(),
                streams_close,
            )),
            async {
                let _ = http_stopped.await;
            },
        ));
        tracing::info!(
            plant = %cfg.plant.config.plant.name,
            status = %format!("http://{bound}/status"),
            "controller running; Ctrl-C or SIGTERM stops it"
        );
        let writer_died = tokio::select! {
            () = shutdown => None,
            ended = &mut writer_task => Some(ended),
        };
        tracing::info!("stopping: closing plant connections, HTTP requests and the journal");
        bridge.stop().await;
        for task in background {
            task.abort();
        }
        // Event streams never end by themselves: end them, or HTTP would wait for them.
        closing.send_replace(true);
        let _ = stop_http.send(());
        http.await.context("HTTP task")?.context("serving HTTP")?;
        writer.close();
        if let Some(ended) = writer_died {
            let journaled = ended.context("journal writer task")?;
            journaled.store().close().await;
            anyhow::bail!("the journal writer stopped: the store could not take inputs");
        }
        let mut journaled = writer_task.await.context("journal writer task")?;
        journaled.snapshot().await.context("final snapshot")?;
        journaled.store().close().await;
        tracing::info!(last_journal_id = journaled.last_id(), "stopped cleanly");
        Ok(())
    }
}
