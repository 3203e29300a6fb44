//! The OPC UA broadcast server against a real async-opcua client over loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opcua::client::{Client, ClientBuilder, DataChangeCallback, IdentityToken, Session};
use opcua::crypto::SecurityPolicy;
use opcua::types::{
    AttributeId, DataValue, MessageSecurityMode, MonitoredItemCreateRequest, MonitoringMode,
    MonitoringParameters, NodeId, ReadValueId, StatusCode, TimestampsToReturn, UserTokenPolicy,
    Variant, WriteValue,
};
use takt_core::RawRecord;
use takt_sim_line::opcua::{Layout, SimOpcUa, SimOpcUaConfig, fifo_field, node_name};
use tempfile::TempDir;
use tokio::task::JoinHandle;

const STEP: Duration = Duration::from_secs(10);
const NS_URI: &str = "urn:takt:sim-line";

fn record(seq: u32, vin: &str) -> RawRecord {
    RawRecord {
        seq,
        vin: vin.to_owned(),
        body: format!("B{seq}"),
        model: "M1".to_owned(),
        options: vec!["SUN".to_owned(), "TOW".to_owned()],
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start(config: SimOpcUaConfig) -> SimOpcUa {
    SimOpcUa::bind(config, loopback())
        .await
        .expect("the simulator binds a free loopback port")
}

fn client(pki: &Path) -> Client {
    ClientBuilder::new()
        .application_name("sim-line test client")
        .application_uri("urn:takt:sim-line:test-client")
        .pki_dir(pki)
        .create_sample_keypair(true)
        .trust_server_certs(true)
        // Failures surface at once instead of after retries.
        .session_retry_limit(0)
        .session_retry_initial(Duration::from_millis(50))
        .client()
        .expect("the client config is valid")
}

struct Connected {
    session: Arc<Session>,
    event_loop: JoinHandle<StatusCode>,
    ns: u16,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}

async fn finish_connect(
    session: Arc<Session>,
    event_loop: opcua::client::SessionEventLoop<opcua::client::transport::TcpConnector>,
) -> Result<Connected, StatusCode> {
    let mut event_loop = event_loop.spawn();
    tokio::select! {
        connected = session.wait_for_connection() => {
            assert!(connected, "the session connected");
        }
        status = &mut event_loop => {
            return Err(status.expect("the event loop does not panic"));
        }
        () = tokio::time::sleep(STEP) => panic!("no connection outcome within {STEP:?}"),
    }
    let ns = session
        .get_namespace_index(NS_URI)
        .await
        .expect("the simulator's namespace is listed");
    Ok(Connected {
        session,
        event_loop,
        ns,
    })
}

async fn connect_none(sim: &SimOpcUa, client: &mut Client) -> Connected {
    let url = sim.endpoint_url();
    let (session, event_loop) = client
        .connect_to_endpoint_directly(
            (
                url.as_str(),
                SecurityPolicy::None.to_uri(),
                MessageSecurityMode::None,
                // A direct connect skips GetEndpoints, so the token policy is stated here.
                UserTokenPolicy::anonymous(),
            ),
            IdentityToken::Anonymous,
        )
        .expect("the endpoint description is valid");
    finish_connect(session, event_loop)
        .await
        .expect("anonymous access on the None endpoint")
}

async fn connect_secure(
    sim: &SimOpcUa,
    client: &mut Client,
    user: &str,
    password: &str,
) -> Result<Connected, StatusCode> {
    let url = sim.endpoint_url();
    let (session, event_loop) = client
        .connect_to_matching_endpoint(
            (
                url.as_str(),
                SecurityPolicy::Basic256Sha256.to_uri(),
                MessageSecurityMode::SignAndEncrypt,
            ),
            IdentityToken::UserName(user.to_owned(), password.into()),
        )
        .await
        .map_err(|e| e.status())?;
    finish_connect(session, event_loop).await
}

fn id(c: &Connected, point: Option<&str>, field: &str) -> NodeId {
    NodeId::new(c.ns, node_name("A1", point, field))
}

async fn read(c: &Connected, point: Option<&str>, field: &str) -> Variant {
    let values = c
        .session
        .read(
            &[ReadValueId::from(id(c, point, field))],
            TimestampsToReturn::Neither,
            0.0,
        )
        .await
        .expect("the read request is answered");
    let value = values.into_iter().next().expect("one result per node");
    assert_eq!(value.status(), StatusCode::Good, "reading {field}");
    value.value.expect("a good read carries a value")
}

async fn read_u32(c: &Connected, point: &str, field: &str) -> u32 {
    match read(c, Some(point), field).await {
        Variant::UInt32(v) => v,
        other => panic!("{field} is a UInt32, got {other:?}"),
    }
}

async fn read_str(c: &Connected, point: &str, field: &str) -> String {
    match read(c, Some(point), field).await {
        Variant::String(s) => s.as_ref().to_owned(),
        other => panic!("{field} is a String, got {other:?}"),
    }
}

async fn read_bool(c: &Connected, point: Option<&str>, field: &str) -> bool {
    match read(c, point, field).await {
        Variant::Boolean(b) => b,
        other => panic!("{field} is a Boolean, got {other:?}"),
    }
}

async fn write_ack(c: &Connected, point: &str, value: u32) {
    let write = WriteValue {
        node_id: id(c, Some(point), "Ack"),
        attribute_id: AttributeId::Value as u32,
        value: DataValue::new_now(Variant::UInt32(value)),
        ..Default::default()
    };
    let statuses = c
        .session
        .write(&[write])
        .await
        .expect("the write request is answered");
    assert_eq!(
        statuses,
        vec![StatusCode::Good],
        "the Ack write is accepted"
    );
}

/// Polls `cond` every 5 ms until it holds; fails the test after [`STEP`].
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn handshake_config(pki: &Path, ack_timeout: Duration) -> SimOpcUaConfig {
    let mut config = SimOpcUaConfig::new("A1", &["B1", "B2"], pki);
    config.layout = Layout::Handshake { ack_timeout };
    config
}

#[tokio::test]
async fn handshake_presents_one_record_at_a_time() {
    let dir = TempDir::new().expect("temp dir");
    let sim = start(handshake_config(&dir.path().join("server"), STEP)).await;
    let mut client = client(&dir.path().join("client"));
    let c = connect_none(&sim, &mut client).await;

    assert!(sim.broadcast("B1", record(1, "VIN1")));
    assert!(sim.broadcast("B1", record(2, "VIN2")));
    assert!(!sim.broadcast("B9", record(3, "VIN3")), "unknown point");

    assert_eq!(read_u32(&c, "B1", "Counter").await, 1);
    assert_eq!(read_u32(&c, "B1", "Seq").await, 1);
    assert_eq!(read_str(&c, "B1", "Vin").await, "VIN1");
    assert_eq!(read_str(&c, "B1", "Body").await, "B1");
    assert_eq!(read_str(&c, "B1", "Model").await, "M1");
    assert_eq!(read_str(&c, "B1", "Options").await, "SUN TOW");
    assert_eq!(sim.queue_len("B1"), 2);
    assert_eq!(
        read_u32(&c, "B2", "Counter").await,
        0,
        "other point untouched"
    );

    // A wrong ack does not release the next record.
    write_ack(&c, "B1", 7).await;
    eventually("the wrong ack shows in the node", async || {
        read_u32(&c, "B1", "Ack").await == 7
    })
    .await;
    assert_eq!(read_u32(&c, "B1", "Seq").await, 1);
    assert_eq!(sim.acked("B1"), None);

    write_ack(&c, "B1", 1).await;
    eventually("the second record is presented", async || {
        read_u32(&c, "B1", "Counter").await == 2
    })
    .await;
    assert_eq!(read_u32(&c, "B1", "Seq").await, 2);
    assert_eq!(read_str(&c, "B1", "Vin").await, "VIN2");
    assert_eq!(sim.acked("B1"), Some(1));
    assert_eq!(sim.presented("B1").map(|r| r.seq), Some(2));

    write_ack(&c, "B1", 2).await;
    eventually("the last ack is taken", async || sim.acked("B1") == Some(2)).await;
    assert_eq!(sim.queue_len("B1"), 0);

    // A duplicate is just another presentation.
    assert!(sim.broadcast("B1", record(2, "VIN2")));
    assert_eq!(read_u32(&c, "B1", "Counter").await, 3);
    assert_eq!(read_u32(&c, "B1", "Seq").await, 2);
}

#[tokio::test]
async fn no_handshake_rises_after_the_timeout_and_falls_with_the_ack() {
    let dir = TempDir::new().expect("temp dir");
    let sim = start(handshake_config(
        &dir.path().join("server"),
        Duration::from_millis(200),
    ))
    .await;
    let mut client = client(&dir.path().join("client"));
    let c = connect_none(&sim, &mut client).await;

    sim.broadcast("B1", record(1, "VIN1"));
    assert!(!read_bool(&c, Some("B1"), "NoHandshake").await);
    eventually("NoHandshake after the timeout", async || {
        read_bool(&c, Some("B1"), "NoHandshake").await
    })
    .await;
    assert!(sim.no_handshake("B1"));
    assert!(!sim.no_handshake("B2"));

    write_ack(&c, "B1", 1).await;
    eventually("NoHandshake cleared by the ack", async || {
        !read_bool(&c, Some("B1"), "NoHandshake").await
    })
    .await;
    assert!(!sim.no_handshake("B1"));
}

#[tokio::test]
async fn fifo_shifts_newest_into_slot_zero() {
    let dir = TempDir::new().expect("temp dir");
    let mut config = SimOpcUaConfig::new("A1", &["B1"], dir.path().join("server"));
    config.layout = Layout::Fifo { slots: 3 };
    let sim = start(config).await;
    let mut client = client(&dir.path().join("client"));
    let c = connect_none(&sim, &mut client).await;

    assert_eq!(read_u32(&c, "B1", &fifo_field(0, "Seq")).await, 0);
    for seq in 1..=4 {
        sim.broadcast("B1", record(seq, &format!("VIN{seq}")));
    }
    assert_eq!(read_u32(&c, "B1", &fifo_field(0, "Seq")).await, 4);
    assert_eq!(read_str(&c, "B1", &fifo_field(0, "Vin")).await, "VIN4");
    assert_eq!(read_u32(&c, "B1", &fifo_field(1, "Seq")).await, 3);
    assert_eq!(read_u32(&c, "B1", &fifo_field(2, "Seq")).await, 2);
    assert_eq!(
        read_str(&c, "B1", &fifo_field(2, "Options")).await,
        "SUN TOW"
    );
    assert_eq!(read_u32(&c, "B1", "LastSeq").await, 4);
    assert_eq!(read_u32(&c, "B1", "Count").await, 4);
    assert_eq!(sim.queue_len("B1"), 3);
}

#[tokio::test]
async fn line_state_and_takt_are_served() {
    let dir = TempDir::new().expect("temp dir");
    let sim = start(handshake_config(&dir.path().join("server"), STEP)).await;
    let mut client = client(&dir.path().join("client"));
    let c = connect_none(&sim, &mut client).await;

    assert!(read_bool(&c, None, "Running").await);
    sim.set_line_state(false, "andon");
    sim.set_takt_ms(57_000);
    assert!(!read_bool(&c, None, "Running").await);
    assert_eq!(read(&c, None, "StopReason").await, Variant::from("andon"));
    assert_eq!(read(&c, None, "TaktMs").await, Variant::UInt32(57_000));
}

/// Subscribes to `node` as Takt does (10 ms publishing and sampling); the values seen so far.
async fn watch_u32(c: &Connected, node: NodeId) -> Arc<Mutex<Vec<u32>>> {
    let seen = Arc::new(Mutex::new(Vec::<u32>::new()));
    let sink = Arc::clone(&seen);
    let subscription = c
        .session
        .create_subscription(
            Duration::from_millis(10),
            100,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(move |value, _item| {
                if let Some(Variant::UInt32(v)) = value.value {
                    sink.lock().expect("no panic while holding").push(v);
                }
            }),
        )
        .await
        .expect("the subscription is created");
    let item = MonitoredItemCreateRequest::new(
        node.into(),
        MonitoringMode::Reporting,
        MonitoringParameters {
            sampling_interval: 10.0,
            queue_size: 10,
            ..Default::default()
        },
    );
    let created = c
        .session
        .create_monitored_items(subscription, TimestampsToReturn::Both, vec![item])
        .await
        .expect("the monitored item is created");
    assert_eq!(created[0].result.status_code, StatusCode::Good);
    assert!(
        created[0].result.revised_sampling_interval <= 10.0,
        "10 ms sampling is granted, got {}",
        created[0].result.revised_sampling_interval
    );
    seen
}

#[tokio::test]
async fn counter_changes_arrive_by_subscription() {
    let dir = TempDir::new().expect("temp dir");
    let sim = start(handshake_config(&dir.path().join("server"), STEP)).await;
    let mut client = client(&dir.path().join("client"));
    let c = connect_none(&sim, &mut client).await;
    let seen = watch_u32(&c, id(&c, Some("B1"), "Counter")).await;

    let seen_has = |v: u32| seen.lock().expect("no panic while holding").contains(&v);
    eventually("the initial Counter value", async || seen_has(0)).await;
    let sent = tokio::time::Instant::now();
    sim.broadcast("B1", record(1, "VIN1"));
    eventually("the Counter change", async || seen_has(1)).await;
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "the change arrives promptly, took {:?}",
        sent.elapsed()
    );
}

/// The last of two pushes within one sampling interval is not left behind: async-opcua's
/// server holds it for the next sample time and, unless the simulator re-samples, sends it
/// only when the node is written again.
#[tokio::test]
async fn the_last_change_within_a_sampling_interval_arrives() {
    let dir = TempDir::new().expect("temp dir");
    let mut config = SimOpcUaConfig::new("A1", &["B1"], dir.path().join("server"));
    config.layout = Layout::Fifo { slots: 3 };
    config.poll_interval_ms = 1;
    let sim = start(config).await;
    let mut client = client(&dir.path().join("client"));
    let c = connect_none(&sim, &mut client).await;
    let seen = watch_u32(&c, id(&c, Some("B1"), "Count")).await;
    let seen_has = |v: u32| seen.lock().expect("no panic while holding").contains(&v);
    eventually("the initial Count", async || seen_has(0)).await;
    sim.broadcast("B1", record(1, "VIN1"));
    eventually("the first push", async || seen_has(1)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    sim.broadcast("B1", record(2, "VIN2"));
    sim.broadcast("B1", record(3, "VIN3"));
    let sent = tokio::time::Instant::now();
    eventually("the second of two pushes 0.1 ms apart", async || {
        seen_has(3)
    })
    .await;
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "it comes at the next sample, not at the next write: took {:?}",
        sent.elapsed()
    );
}

fn secure_config(pki: &Path, trust: bool) -> SimOpcUaConfig {
    let mut config = handshake_config(pki, STEP);
    config.users = vec![("operator".to_owned(), "s3cret".to_owned())];
    config.trust_client_certs = trust;
    config
}

#[tokio::test]
async fn secure_endpoint_accepts_the_right_password() {
    let dir = TempDir::new().expect("temp dir");
    let sim = start(secure_config(&dir.path().join("server"), true)).await;
    sim.broadcast("B1", record(5, "VIN5"));
    let mut client = client(&dir.path().join("client"));
    let c = connect_secure(&sim, &mut client, "operator", "s3cret")
        .await
        .expect("Basic256Sha256 SignAndEncrypt with the right password");
    assert_eq!(
        c.session.endpoint_info().endpoint.security_mode,
        MessageSecurityMode::SignAndEncrypt
    );
    assert_eq!(read_u32(&c, "B1", "Seq").await, 5);
}

#[tokio::test]
async fn secure_endpoint_refuses_a_wrong_password() {
    let dir = TempDir::new().expect("temp dir");
    let sim = start(secure_config(&dir.path().join("server"), true)).await;
    let mut client = client(&dir.path().join("client"));
    let status = connect_secure(&sim, &mut client, "operator", "wrong")
        .await
        .err()
        .expect("a wrong password is refused");
    // async-opcua 0.19 answers ActivateSession with this, not BadUserAccessDenied.
    assert_eq!(status, StatusCode::BadIdentityTokenRejected);
}

#[tokio::test]
async fn untrusted_client_certificate_is_refused_until_trusted() {
    let dir = TempDir::new().expect("temp dir");
    let server_pki = dir.path().join("server");
    let client_pki = dir.path().join("client");
    let mut sim = start(secure_config(&server_pki, false)).await;
    let mut client = client(&client_pki);
    let status = connect_secure(&sim, &mut client, "operator", "s3cret")
        .await
        .err()
        .expect("an unknown client certificate is refused");
    assert_eq!(status, StatusCode::BadCertificateUntrusted);

    // The refused certificate lands in `rejected`; moving it to `trusted` lets it in.
    let rejected = server_pki.join("rejected");
    let cert = std::fs::read_dir(&rejected)
        .expect("the server keeps rejected certificates")
        .next()
        .expect("one rejected certificate")
        .expect("readable entry")
        .path();
    let trusted = server_pki.join("trusted");
    std::fs::create_dir_all(&trusted).expect("create trusted dir");
    std::fs::rename(&cert, trusted.join(cert.file_name().expect("a file name")))
        .expect("move the certificate");
    sim.restart().await.expect("restart");
    connect_secure(&sim, &mut client, "operator", "s3cret")
        .await
        .expect("the trusted certificate is accepted");
}

#[tokio::test]
async fn drop_sessions_disconnects_clients_and_keeps_serving() {
    let dir = TempDir::new().expect("temp dir");
    let mut sim = start(handshake_config(&dir.path().join("server"), STEP)).await;
    sim.broadcast("B1", record(1, "VIN1"));
    let client_pki = dir.path().join("client");
    let mut client = ClientBuilder::new()
        .application_name("sim-line reconnecting client")
        .application_uri("urn:takt:sim-line:test-client")
        .pki_dir(&client_pki)
        .create_sample_keypair(true)
        .trust_server_certs(true)
        .session_retry_initial(Duration::from_millis(20))
        .client()
        .expect("the client config is valid");
    let c = connect_none(&sim, &mut client).await;
    let first_session = c.session.server_session_id();

    let dropped = std::time::Instant::now();
    sim.drop_sessions().await.expect("the server is rebuilt");
    assert!(dropped.elapsed() < Duration::from_secs(1), "a quick drop");

    // The old session is gone: the client's reconnect has to create a new one.
    eventually("a new session after the drop", async || {
        c.session.server_session_id() != first_session
    })
    .await;
    eventually("reads work again", async || {
        c.session
            .read(
                &[ReadValueId::from(id(&c, Some("B1"), "Seq"))],
                TimestampsToReturn::Neither,
                0.0,
            )
            .await
            .is_ok_and(|v| v.first().and_then(|d| d.value.clone()) == Some(Variant::UInt32(1)))
    })
    .await;
    assert_eq!(sim.queue_len("B1"), 1, "the memory survives");
}

#[tokio::test]
async fn restart_on_the_same_port_keeps_the_queue() {
    let dir = TempDir::new().expect("temp dir");
    let mut sim = start(handshake_config(&dir.path().join("server"), STEP)).await;
    let addr = sim.local_addr();
    sim.broadcast("B1", record(1, "VIN1"));
    sim.broadcast("B1", record(2, "VIN2"));

    sim.stop().await;
    sim.broadcast("B1", record(3, "VIN3"));
    sim.restart().await.expect("restart on the same port");
    assert_eq!(sim.local_addr(), addr);

    let mut client = client(&dir.path().join("client"));
    let c = connect_none(&sim, &mut client).await;
    assert_eq!(sim.queue_len("B1"), 3);
    assert_eq!(read_u32(&c, "B1", "Counter").await, 1);
    assert_eq!(read_u32(&c, "B1", "Seq").await, 1);
    write_ack(&c, "B1", 1).await;
    eventually("the queued record follows", async || {
        read_u32(&c, "B1", "Seq").await == 2
    })
    .await;
}
