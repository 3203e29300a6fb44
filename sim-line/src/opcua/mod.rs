//! An OPC UA server that broadcasts vehicles like a line's PLC (the counterpart of the
//! OPC UA client in `takt-plc-bridge`).
//!
//! One server per line. Nodes (string ids in the namespace [`SimOpcUaConfig::namespace_uri`],
//! built by [`node_name`]): `{line}.Running`, `{line}.StopReason`, `{line}.TaktMs`, and per
//! broadcast point either the handshake layout (`Seq`, `Vin`, `Body`, `Model`, `Options`,
//! `Counter`, client-writable `Ack`, `NoHandshake`) or the FIFO layout (`Fifo[i].Seq` …
//! `Fifo[i].Options`, `LastSeq`, `Count`).
//!
//! The PLC's memory (queued and shown records, counters, FIFO slots) is kept outside the
//! OPC UA server, so it survives [`SimOpcUa::stop`] / [`SimOpcUa::restart`] and
//! [`SimOpcUa::drop_sessions`], which rebuild the server and write the memory back.

mod nodes;
mod plc;

use crate::lock;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opcua::crypto::SecurityPolicy;
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{SimpleNodeManager, simple_node_manager};
use opcua::server::{
    ANONYMOUS_USER_TOKEN_ID, ServerBuilder, ServerHandle, ServerUserToken, SubscriptionCache,
};
use opcua::types::{DataValue, MessageSecurityMode, NodeId, StatusCode, Variant};
use takt_core::RawRecord;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

pub use nodes::{fifo_field, node_name};
use plc::{Plc, Writes};

/// Acks waiting for the simulator; a client flooding Ack beyond this gets a bad status.
const ACK_QUEUE_CAPACITY: usize = 1024;
/// How long a stopping server may take to close its connections.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// How a broadcast point hands records to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One record at a time; the next waits until the client writes `Counter` to `Ack`.
    Handshake {
        /// After this long without an ack, `NoHandshake` goes true.
        ack_timeout: Duration,
    },
    /// The last `slots` records, newest in slot 0, no acknowledgement.
    Fifo {
        /// Slots per point.
        slots: usize,
    },
}

/// What one simulated line serves.
#[derive(Clone, PartialEq, Eq)]
pub struct SimOpcUaConfig {
    /// Line id, the first part of every node id.
    pub line: String,
    /// Broadcast point ids.
    pub points: Vec<String>,
    /// Handshake or FIFO, for every point.
    pub layout: Layout,
    /// The namespace the nodes live in; clients resolve its index by this URI.
    pub namespace_uri: String,
    /// Username/password pairs; required on the secure endpoint, optional on the None one.
    pub users: Vec<(String, String)>,
    /// Server certificate and key (created on first start), and the trusted/rejected
    /// client certificates.
    pub pki_dir: PathBuf,
    /// Trust any client certificate; when false, only those in `pki_dir/trusted/certs`.
    pub trust_client_certs: bool,
    /// Subscription tick, minimum publishing and sampling interval, in ms. The library's
    /// 100 ms default would be the latency floor of every broadcast.
    pub poll_interval_ms: u64,
}

impl SimOpcUaConfig {
    /// A handshake line with a 2 s ack timeout, anonymous access only, trusting every client
    /// certificate, 10 ms polling.
    #[must_use]
    pub fn new(line: &str, points: &[&str], pki_dir: impl Into<PathBuf>) -> Self {
        Self {
            line: line.to_owned(),
            points: points.iter().map(|&p| p.to_owned()).collect(),
            layout: Layout::Handshake {
                ack_timeout: Duration::from_secs(2),
            },
            namespace_uri: "urn:takt:sim-line".to_owned(),
            users: Vec::new(),
            pki_dir: pki_dir.into(),
            trust_client_certs: true,
            poll_interval_ms: 10,
        }
    }
}

impl fmt::Debug for SimOpcUaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(user, _)| user.as_str()).collect();
        // Passwords stay out of logs.
        f.debug_struct("SimOpcUaConfig")
            .field("line", &self.line)
            .field("points", &self.points)
            .field("layout", &self.layout)
            .field("namespace_uri", &self.namespace_uri)
            .field("users", &users)
            .field("pki_dir", &self.pki_dir)
            .field("trust_client_certs", &self.trust_client_certs)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .finish()
    }
}

/// Why the simulator could not serve.
#[derive(Debug, thiserror::Error)]
pub enum SimOpcUaError {
    /// The address could not be bound.
    #[error("cannot bind the OPC UA port: {0}")]
    Bind(#[from] io::Error),
    /// The server could not be built (configuration, pki).
    #[error("cannot build the OPC UA server: {0}")]
    Server(String),
    /// The node manager was missing after the build (a bug here).
    #[error("the OPC UA server has no node manager for {0}")]
    Namespace(String),
}

/// The node manager of the running server, where values are published.
struct Live {
    nodes: Arc<SimpleNodeManager>,
    subscriptions: Arc<SubscriptionCache>,
    ns: u16,
}

struct Inner {
    plc: Plc,
    /// `None` while stopped: the memory changes, nothing is published.
    live: Option<Live>,
    /// Nodes written lately, with their value and until when to re-sample them.
    resample: HashMap<NodeId, (DataValue, Instant)>,
}

/// How long after a write its node is re-sampled: covers clients sampling up to this often.
///
/// async-opcua 0.19's server holds a value written sooner than a monitored item's sampling
/// interval after the previous one, to send it at the next sample time; but it looks at the
/// held value again only when the node is written again, so the last change of a burst waits
/// for the next write (or forever). Writing each recent node again, unchanged (same value, same
/// stamp, so no notification of its own), on every server tick lets the held value go at its
/// sample time, as a server that samples would.
const RESAMPLE_FOR: Duration = Duration::from_millis(200);

type Shared = Arc<Mutex<Inner>>;

impl Inner {
    /// Writes `writes` in order, in one address-space lock so a reader never sees half a
    /// record. Nothing to do while stopped: `SimOpcUa::serve` writes the whole memory.
    fn publish(&mut self, writes: Writes) {
        let Some(live) = &self.live else { return };
        let values: Vec<(NodeId, DataValue)> = writes
            .into_iter()
            .map(|(name, value)| (NodeId::new(live.ns, name), DataValue::new_now(value)))
            .collect();
        live.set(&values);
        let until = Instant::now() + RESAMPLE_FOR;
        self.resample
            .extend(values.into_iter().map(|(id, value)| (id, (value, until))));
    }

    /// Writes the recently written nodes again, unchanged (see [`RESAMPLE_FOR`]); forgets
    /// those written longer ago. Whether any are left to re-sample.
    fn resample(&mut self, now: Instant) -> bool {
        self.resample.retain(|_, (_, until)| *until > now);
        if let Some(live) = &self.live {
            let values: Vec<(NodeId, DataValue)> = self
                .resample
                .iter()
                .map(|(id, (value, _))| (id.clone(), value.clone()))
                .collect();
            live.set(&values);
        }
        !self.resample.is_empty()
    }
}

impl Live {
    fn set(&self, values: &[(NodeId, DataValue)]) {
        let result = self.nodes.set_values(
            &self.subscriptions,
            values.iter().map(|(id, value)| (id, None, value.clone())),
        );
        // Only a node missing from the address space fails: a bug in `nodes`, not an
        // operating error.
        debug_assert!(result.is_ok(), "publishing to unknown nodes: {result:?}");
    }
}

/// An acknowledgement written by a client.
#[derive(Debug)]
struct Ack {
    point: String,
    value: u32,
}

struct Running {
    handle: ServerHandle,
    task: JoinHandle<Result<(), String>>,
}

/// The running simulator. Dropping it stops serving.
pub struct SimOpcUa {
    config: SimOpcUaConfig,
    shared: Shared,
    local_addr: SocketAddr,
    /// Kept open across [`drop_sessions`](Self::drop_sessions) so the port never closes;
    /// `None` while stopped.
    listener: Option<StdListener>,
    running: Option<Running>,
    acks: mpsc::Sender<Ack>,
    wake: Arc<Notify>,
    driver: JoinHandle<()>,
}

impl fmt::Debug for SimOpcUa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimOpcUa")
            .field("config", &self.config)
            .field("local_addr", &self.local_addr)
            .field("serving", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl SimOpcUa {
    /// Binds `addr` (port 0 picks a free port) and serves `config`'s line.
    ///
    /// # Errors
    /// When the address cannot be bound or the server not built (e.g. an unusable pki dir).
    pub async fn bind(config: SimOpcUaConfig, addr: SocketAddr) -> Result<Self, SimOpcUaError> {
        let listener = bind_listener(addr)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Inner {
            plc: Plc::new(&config.line, &config.points, config.layout),
            live: None,
            resample: HashMap::new(),
        }));
        let (acks, ack_rx) = mpsc::channel(ACK_QUEUE_CAPACITY);
        let wake = Arc::new(Notify::new());
        let driver = tokio::spawn(drive(
            Arc::clone(&shared),
            ack_rx,
            Arc::clone(&wake),
            Duration::from_millis(config.poll_interval_ms.max(1)),
        ));
        let mut sim = Self {
            config,
            shared,
            local_addr,
            listener: Some(listener),
            running: None,
            acks,
            wake,
            driver,
        };
        sim.serve()?;
        Ok(sim)
    }

    /// The bound address (stays the same across restarts).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `opc.tcp://127.0.0.1:{port}/`.
    #[must_use]
    pub fn endpoint_url(&self) -> String {
        endpoint_url(self.local_addr)
    }

    /// The namespace index the running server gave [`SimOpcUaConfig::namespace_uri`].
    #[must_use]
    pub fn namespace_index(&self) -> Option<u16> {
        lock(&self.shared).live.as_ref().map(|live| live.ns)
    }

    /// Broadcasts `record` at `point`: queued and presented in turn (handshake) or pushed
    /// into slot 0 (FIFO). A repeated seq or a changed payload is just another broadcast.
    /// Returns false for an unknown point.
    pub fn broadcast(&self, point: &str, record: RawRecord) -> bool {
        let mut inner = lock(&self.shared);
        let Some(writes) = inner.plc.broadcast(point, record, Instant::now()) else {
            return false;
        };
        inner.publish(writes);
        drop(inner);
        // The ack deadline may have moved.
        self.wake.notify_one();
        true
    }

    /// Sets `Running` and `StopReason`.
    pub fn set_line_state(&self, running: bool, reason: &str) {
        let mut inner = lock(&self.shared);
        let writes = inner.plc.set_line_state(running, reason);
        inner.publish(writes);
        drop(inner);
        self.wake.notify_one();
    }

    /// Sets `TaktMs`.
    pub fn set_takt_ms(&self, takt_ms: u32) {
        let mut inner = lock(&self.shared);
        let writes = inner.plc.set_takt_ms(takt_ms);
        inner.publish(writes);
        drop(inner);
        self.wake.notify_one();
    }

    /// The last counter value a client acknowledged at `point`.
    #[must_use]
    pub fn acked(&self, point: &str) -> Option<u32> {
        lock(&self.shared).plc.acked(point)
    }

    /// Handshake: records not yet acknowledged, the presented one included; FIFO: records
    /// held in the slots.
    #[must_use]
    pub fn queue_len(&self, point: &str) -> usize {
        lock(&self.shared).plc.queue_len(point)
    }

    /// Whether `point`'s presentation has waited longer than the ack timeout.
    #[must_use]
    pub fn no_handshake(&self, point: &str) -> bool {
        lock(&self.shared).plc.no_handshake(point)
    }

    /// Handshake: the record in the fields; FIFO: the newest record.
    #[must_use]
    pub fn presented(&self, point: &str) -> Option<RawRecord> {
        lock(&self.shared).plc.presented(point)
    }

    /// Every client loses its connection and its session now, as when a PLC's OPC UA stack
    /// restarts: the server is rebuilt on the same, never-closed listening socket (new
    /// connections wait in its backlog meanwhile) and the memory is written back.
    ///
    /// # Errors
    /// When the server cannot be rebuilt.
    pub async fn drop_sessions(&mut self) -> Result<(), SimOpcUaError> {
        self.shutdown_server().await;
        self.serve()
    }

    /// Stops serving: connections closed, port released. The memory is kept.
    pub async fn stop(&mut self) {
        self.shutdown_server().await;
        self.listener = None;
    }

    /// Serves again on the same address, with the memory as it was.
    ///
    /// # Errors
    /// When the port cannot be bound again or the server not built.
    pub async fn restart(&mut self) -> Result<(), SimOpcUaError> {
        self.stop().await;
        self.listener = Some(bind_listener(self.local_addr)?);
        self.serve()
    }

    /// Builds a server on a duplicate of the listening socket, fills its nodes from the
    /// memory and runs it.
    fn serve(&mut self) -> Result<(), SimOpcUaError> {
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        let listener = listener.try_clone()?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let (server, handle) = server_builder(&self.config, self.local_addr.port())
            .build()
            .map_err(SimOpcUaError::Server)?;
        let live = self.install_nodes(&handle)?;
        {
            let mut inner = lock(&self.shared);
            inner.live = Some(live);
            let snapshot = inner.plc.snapshot();
            inner.publish(snapshot);
        }
        let task = tokio::spawn(server.run_with(listener));
        self.running = Some(Running { handle, task });
        Ok(())
    }

    fn install_nodes(&self, handle: &ServerHandle) -> Result<Live, SimOpcUaError> {
        let uri = &self.config.namespace_uri;
        let missing = || SimOpcUaError::Namespace(uri.clone());
        let nodes = handle
            .node_managers()
            .get_of_type::<SimpleNodeManager>()
            .ok_or_else(missing)?;
        let ns = handle.get_namespace_index(uri).ok_or_else(missing)?;
        {
            let mut space = nodes.address_space().write();
            nodes::build_address_space(
                &mut space,
                ns,
                &self.config.line,
                &self.config.points,
                &self.config.layout,
            );
        }
        if matches!(self.config.layout, Layout::Handshake { .. }) {
            for point in &self.config.points {
                let id = NodeId::new(ns, node_name(&self.config.line, Some(point), "Ack"));
                nodes
                    .inner()
                    .add_write_callback(id, ack_callback(point, self.acks.clone()));
            }
        }
        Ok(Live {
            nodes,
            subscriptions: Arc::clone(handle.subscriptions()),
            ns,
        })
    }

    /// Cancels the server (it closes every connection; its sessions die with it) and waits
    /// for it to finish, bounded.
    async fn shutdown_server(&mut self) {
        lock(&self.shared).live = None;
        if let Some(Running { handle, mut task }) = self.running.take() {
            handle.cancel();
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for SimOpcUa {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.handle.cancel();
        }
        self.driver.abort();
    }
}

fn endpoint_url(addr: SocketAddr) -> String {
    format!("opc.tcp://127.0.0.1:{}/", addr.port())
}

fn bind_listener(addr: SocketAddr) -> io::Result<StdListener> {
    // std sets SO_REUSEADDR on Unix, so a restart rebinds despite TIME_WAIT connections.
    let listener = StdListener::bind(addr)?;
    // async-opcua accepts its connections itself; on Linux they inherit TCP_NODELAY from the
    // listening socket. Without it a notification can wait behind the client's delayed ACK
    // of the previous answer (up to 40 ms), the tail every client of the server would see.
    socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
    Ok(listener)
}

/// The write callback of `point`'s Ack. It runs under the address-space lock, where writing
/// node values would deadlock, so it only hands the value to the driver.
fn ack_callback(
    point: &str,
    acks: mpsc::Sender<Ack>,
) -> impl Fn(DataValue, &opcua::types::NumericRange) -> StatusCode + Send + Sync + 'static {
    let point = point.to_owned();
    move |value, _range| {
        let Some(Variant::UInt32(value)) = value.value else {
            return StatusCode::BadTypeMismatch;
        };
        let ack = Ack {
            point: point.clone(),
            value,
        };
        match acks.try_send(ack) {
            Ok(()) => StatusCode::Good,
            Err(_) => StatusCode::BadResourceUnavailable,
        }
    }
}

fn server_builder(config: &SimOpcUaConfig, port: u16) -> ServerBuilder {
    let user_ids: Vec<String> = (0..config.users.len())
        .map(|i| format!("user{i}"))
        .collect();
    let mut none_tokens: Vec<&str> = vec![ANONYMOUS_USER_TOKEN_ID];
    none_tokens.extend(user_ids.iter().map(String::as_str));
    let secure_tokens: Vec<&str> = user_ids.iter().map(String::as_str).collect();
    let poll_ms = config.poll_interval_ms;
    let mut builder = ServerBuilder::new()
        .application_name(format!("takt sim-line {}", config.line))
        .application_uri(format!("urn:takt:sim-line:{}", config.line))
        .product_uri("urn:takt:sim-line")
        .host("127.0.0.1")
        .port(port)
        .discovery_urls(vec![endpoint_url(SocketAddr::from(([127, 0, 0, 1], port)))])
        .pki_dir(config.pki_dir.clone())
        .create_sample_keypair(true)
        .trust_client_certs(config.trust_client_certs)
        .subscription_poll_interval_ms(poll_ms)
        .with_node_manager(simple_node_manager(
            NamespaceMetadata {
                namespace_uri: config.namespace_uri.clone(),
                ..Default::default()
            },
            "sim-line",
        ))
        .add_endpoint(
            "none",
            (
                "/",
                SecurityPolicy::None,
                MessageSecurityMode::None,
                &none_tokens as &[&str],
            ),
        )
        .add_endpoint(
            "basic256sha256_sign_encrypt",
            (
                "/",
                SecurityPolicy::Basic256Sha256,
                MessageSecurityMode::SignAndEncrypt,
                &secure_tokens as &[&str],
            ),
        );
    for (id, (user, password)) in user_ids.iter().zip(&config.users) {
        builder = builder.add_user_token(id, ServerUserToken::user_pass(user, password));
    }
    let limits = builder.limits_mut();
    #[expect(
        clippy::cast_precision_loss,
        reason = "intervals are far below 2^52 ms"
    )]
    let poll_ms = poll_ms as f64;
    limits.subscriptions.min_publishing_interval_ms = poll_ms;
    limits.subscriptions.min_sampling_interval_ms = poll_ms;
    // async-opcua's client keeps ceil(round trip / publishing interval) x 2 publish requests in
    // flight per subscription; at a 10 ms interval that exceeds the server's default of 4 and
    // every surplus request comes back as BadTooManyPublishRequests. PLCs built for fast
    // subscriptions queue more.
    limits.subscriptions.max_publish_requests_per_subscription = 32;
    limits.subscriptions.max_pending_publish_requests = 128;
    builder
}

/// Applies acks, raises `NoHandshake` at the ack deadlines and re-samples recent writes every
/// `tick` (see [`RESAMPLE_FOR`]), for the simulator's lifetime.
async fn drive(shared: Shared, mut acks: mpsc::Receiver<Ack>, wake: Arc<Notify>, tick: Duration) {
    let mut resampling = false;
    loop {
        let deadline = lock(&shared).plc.next_deadline();
        let resample_at = resampling.then(|| Instant::now() + tick);
        let sleep = async {
            match deadline.into_iter().chain(resample_at).min() {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ack = acks.recv() => {
                let Some(ack) = ack else { return };
                let mut inner = lock(&shared);
                let writes = inner.plc.ack(&ack.point, ack.value, Instant::now());
                inner.publish(writes);
            }
            () = wake.notified() => {}
            () = sleep => {
                let mut inner = lock(&shared);
                let writes = inner.plc.expire(Instant::now());
                inner.publish(writes);
            }
        }
        resampling = lock(&shared).resample(Instant::now());
    }
}
