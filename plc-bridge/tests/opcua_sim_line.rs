//! The OPC UA broadcast source against sim-line's line server over real sockets: both layouts,
//! session drops and a server restart with records queued meanwhile, and security (a signed and
//! encrypted session with a user; a wrong password and an untrusted certificate each named; a PLC
//! certificate issued for another host refused by name, and accepted only with the documented
//! insecure option).

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Recorder, broadcasts, conditions, vin};
use takt_core::RawRecord;
use takt_core::SequencingInput;
use takt_plc_bridge::opcua::{self, SourceConfig, SourceHandle};
use takt_sim_line::opcua::{Layout, SimOpcUa, SimOpcUaConfig};

const WAIT: Duration = Duration::from_secs(15);

fn record(seq: u32) -> RawRecord {
    RawRecord {
        seq,
        vin: vin(seq),
        body: format!("B{seq}"),
        model: "SUV5".into(),
        options: vec!["P7L".into(), "WH2".into()],
    }
}

fn sim_config(layout: Layout) -> SimOpcUaConfig {
    let pki = tempfile::tempdir().expect("server pki").keep();
    let mut cfg = SimOpcUaConfig::new("A1", &["B1"], pki);
    cfg.layout = layout;
    cfg.users = vec![("takt".into(), "s3cret".into())];
    cfg
}

async fn server(cfg: SimOpcUaConfig) -> SimOpcUa {
    SimOpcUa::bind(cfg, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("server starts")
}

/// The source configuration for sim-line's node layout; `extra` adds top-level keys.
fn source(sim: &SimOpcUa, layout: &str, extra: &str) -> SourceConfig {
    let text = format!(
        r#"
        line = "A1"
        point = "B1"
        endpoint = "{url}"
        namespace_uri = "urn:takt:sim-line"
        publishing_interval_ms = 10
        poll_ms = 200
        reconnect_max_ms = 200
        pki_dir = "{pki}"
        {extra}
        line_state = {{ running = "s=A1.Running", stop_reason = "s=A1.StopReason" }}
        {layout}
        "#,
        url = sim.endpoint_url(),
        pki = tempfile::tempdir().expect("client pki").keep().display(),
    );
    toml::from_str(&text).expect("source config")
}

const HANDSHAKE: &str = r#"[layout]
    kind = "handshake"
    trigger = "s=A1.B1.Counter"
    ack = "s=A1.B1.Ack"
    no_handshake = "s=A1.B1.NoHandshake"
    record = { seq = "s=A1.B1.Seq", vin = "s=A1.B1.Vin", body = "s=A1.B1.Body", model = "s=A1.B1.Model", options = "s=A1.B1.Options" }"#;

/// sim-line's FIFO layout with `slots` slots, triggered by its counter.
fn fifo(slots: usize) -> String {
    format!(
        r#"[layout]
        kind = "fifo"
        trigger = "s=A1.B1.Count"
        slot_count = {slots}
        slot_template = {{ seq = "s=A1.B1.Fifo[{{i}}].Seq", vin = "s=A1.B1.Fifo[{{i}}].Vin", model = "s=A1.B1.Fifo[{{i}}].Model", options = "s=A1.B1.Fifo[{{i}}].Options" }}"#
    )
}

async fn wait_connects(source: &SourceHandle, at_least: u64) {
    let mut status = source.watch();
    tokio::time::timeout(
        WAIT,
        status.wait_for(|s| s.connected && s.connects >= at_least),
    )
    .await
    .expect("source connects in time")
    .expect("source running");
}

async fn wait_error(source: &SourceHandle) -> String {
    let mut status = source.watch();
    let status = tokio::time::timeout(WAIT, status.wait_for(|s| s.last_error.is_some()))
        .await
        .expect("source fails in time")
        .expect("source running")
        .clone();
    status.last_error.unwrap_or_default()
}

#[tokio::test]
async fn handshake_survives_session_drops_and_a_restart_without_losing_or_doubling() {
    let mut sim = server(sim_config(Layout::Handshake {
        ack_timeout: Duration::from_secs(5),
    }))
    .await;
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(source(&sim, HANDSHAKE, ""), journal.clone()).expect("source");
    for seq in 9998..=9999 {
        sim.broadcast("B1", record(seq));
    }
    let seqs = |i: &[takt_core::Input]| broadcasts(i).iter().map(|b| b.0).collect::<Vec<_>>();
    journal
        .wait_for(WAIT, "the first records", |i| seqs(i) == [9998, 9999])
        .await;

    // Two session drops, records queued in between: each is delivered once, in order.
    for (round, seq) in [(2, 0), (3, 1)] {
        sim.drop_sessions().await.expect("drop");
        sim.broadcast("B1", record(seq));
        wait_connects(&source, round).await;
    }
    // A server restart with two records queued while it is down.
    sim.stop().await;
    sim.broadcast("B1", record(2));
    sim.broadcast("B1", record(3));
    sim.restart().await.expect("restart");
    let inputs = journal
        .wait_for(WAIT, "every record", |i| seqs(i).len() == 6)
        .await;
    assert_eq!(seqs(&inputs), [9998, 9999, 0, 1, 2, 3]);
    assert_eq!(broadcasts(&inputs)[2].3, ["P7L", "WH2"], "options split");
    let mut acked = None;
    for _ in 0..100 {
        if sim.queue_len("B1") == 0 {
            acked = sim.acked("B1");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(acked.is_some(), "the last record was acknowledged");
    let links: Vec<bool> = conditions(&inputs)
        .into_iter()
        .filter(|(alarm, _)| *alarm == "source_disconnected")
        .map(|(_, active)| active)
        .collect();
    assert!(
        links.starts_with(&[false, true, false]) && links.iter().filter(|a| **a).count() >= 3,
        "each drop and the restart raised the alarm and the reconnect cleared it: {links:?}"
    );
    assert_eq!(links.last(), Some(&false));
    source.stop().await;
}

#[tokio::test]
async fn fifo_catches_up_after_a_restart_and_reports_line_stops() {
    let mut sim = server(sim_config(Layout::Fifo { slots: 8 })).await;
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(source(&sim, &fifo(8), ""), journal.clone()).expect("source");
    sim.broadcast("B1", record(1));
    sim.broadcast("B1", record(2));
    let seqs = |i: &[takt_core::Input]| broadcasts(i).iter().map(|b| b.0).collect::<Vec<_>>();
    journal
        .wait_for(WAIT, "1 and 2", |i| seqs(i) == [1, 2])
        .await;
    sim.stop().await;
    for seq in 3..=6 {
        sim.broadcast("B1", record(seq));
    }
    sim.set_line_state(false, "andon T2");
    sim.restart().await.expect("restart");
    let inputs = journal
        .wait_for(WAIT, "3..=6 after the restart", |i| seqs(i).len() == 6)
        .await;
    assert_eq!(seqs(&inputs), [1, 2, 3, 4, 5, 6]);
    journal
        .wait_for(WAIT, "the line stop", |i| {
            i.iter().any(|i| {
                matches!(i, takt_core::Input::Sequencing(SequencingInput::LineState { running: false, reason: Some(r), .. }) if r == "andon T2")
            })
        })
        .await;
    source.stop().await;
}

/// Single pushes are taken from the FIFO's two newest slots; a burst within one publishing
/// interval and a correction must still come out complete, in order, once each.
#[tokio::test]
async fn fifo_singles_bursts_and_a_correction_each_once_in_order() {
    let sim = server(sim_config(Layout::Fifo { slots: 4 })).await;
    let journal = Arc::new(Recorder::new());
    let source = opcua::spawn(source(&sim, &fifo(4), ""), journal.clone()).expect("source");
    wait_connects(&source, 1).await;
    let seqs = |i: &[takt_core::Input]| broadcasts(i).iter().map(|b| b.0).collect::<Vec<_>>();
    for seq in 1..=3 {
        sim.broadcast("B1", record(seq));
        journal
            .wait_for(WAIT, "each single push", |i| seqs(i).last() == Some(&seq))
            .await;
    }
    // Three at once, within one publishing interval: fewer than the 4 slots, or any reader
    // would lose the oldest.
    for seq in 4..=6 {
        sim.broadcast("B1", record(seq));
    }
    journal
        .wait_for(WAIT, "the burst", |i| seqs(i).len() == 6)
        .await;
    let mut corrected = record(6);
    corrected.options = vec!["P7L".into(), "WH3".into()];
    sim.broadcast("B1", corrected.clone());
    sim.broadcast("B1", record(7));
    let inputs = journal
        .wait_for(WAIT, "the correction and 7", |i| seqs(i).len() == 8)
        .await;
    assert_eq!(seqs(&inputs), [1, 2, 3, 4, 5, 6, 6, 7]);
    let sixes: Vec<_> = broadcasts(&inputs)
        .into_iter()
        .filter(|b| b.0 == 6)
        .map(|b| b.3)
        .collect();
    assert_eq!(sixes, [record(6).options, corrected.options]);
    // Nothing more turns up from the polls' whole reads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seqs(&journal.inputs()).len(), 8);
    source.stop().await;
}

#[tokio::test]
async fn signed_and_encrypted_with_a_user_and_each_refusal_named() {
    let sim = server(sim_config(Layout::Handshake {
        ack_timeout: Duration::from_secs(5),
    }))
    .await;
    let secure = r#"security = "basic256sha256"
        trust_server_certs = true
        user = "takt""#;
    let journal = Arc::new(Recorder::new());
    let good = opcua::spawn(
        source(&sim, HANDSHAKE, &format!("{secure}\npassword = \"s3cret\"")),
        journal.clone(),
    )
    .expect("source");
    sim.broadcast("B1", record(7));
    journal
        .wait_for(WAIT, "a record over the secure channel", |i| {
            broadcasts(i).len() == 1
        })
        .await;
    good.stop().await;

    let wrong = opcua::spawn(
        source(&sim, HANDSHAKE, &format!("{secure}\npassword = \"guess\"")),
        Arc::new(Recorder::new()),
    )
    .expect("source");
    let error = wait_error(&wrong).await;
    assert!(
        error.contains("BadIdentityTokenRejected") && error.contains("password refused"),
        "{error}"
    );
    wrong.stop().await;

    let mut strict = sim_config(Layout::Handshake {
        ack_timeout: Duration::from_secs(5),
    });
    strict.trust_client_certs = false;
    let strict = server(strict).await;
    let untrusted = opcua::spawn(
        source(
            &strict,
            HANDSHAKE,
            &format!("{secure}\npassword = \"s3cret\""),
        ),
        Arc::new(Recorder::new()),
    )
    .expect("source");
    let error = wait_error(&untrusted).await;
    assert!(
        error.contains("BadCertificateUntrusted") && error.contains("not trusted"),
        "{error}"
    );
    untrusted.stop().await;
}

/// A PLC's certificate as many ship: issued for its factory host name, not the address the plant
/// reaches it by. Written into the server's PKI folder before it starts, so it serves this one.
fn certificate_for_another_host(cfg: &SimOpcUaConfig) {
    use ::opcua::crypto::{CertificateStore, X509Data};
    // The application URI and one DNS name: no localhost, no 127.0.0.1, no machine name.
    let names = X509Data::alt_host_names(
        &format!("urn:takt:sim-line:{}", cfg.line),
        Some(vec!["plc-factory.example".into()]),
        false,
        false,
        false,
    );
    let data = X509Data {
        key_size: 2048,
        common_name: "factory PLC".into(),
        organization: "PLC maker".into(),
        organizational_unit: "controls".into(),
        country: "DE".into(),
        state: "BW".into(),
        alt_host_names: names,
        certificate_duration_days: 365,
    };
    CertificateStore::new(&cfg.pki_dir)
        .create_and_store_application_instance_cert(&data, true)
        .expect("server certificate written");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_by_name_unless_checks_are_skipped() {
    let mut cfg = sim_config(Layout::Handshake {
        ack_timeout: Duration::from_secs(5),
    });
    certificate_for_another_host(&cfg);
    cfg.trust_client_certs = true;
    let sim = server(cfg).await;
    let secure = r#"security = "basic256sha256"
        trust_server_certs = true
        user = "takt"
        password = "s3cret""#;

    let strict =
        opcua::spawn(source(&sim, HANDSHAKE, secure), Arc::new(Recorder::new())).expect("source");
    let error = wait_error(&strict).await;
    assert!(
        error.contains("BadCertificateHostNameInvalid")
            && error.contains("insecure_skip_cert_checks"),
        "{error}"
    );
    strict.stop().await;

    let journal = Arc::new(Recorder::new());
    let skipping = opcua::spawn(
        source(
            &sim,
            HANDSHAKE,
            &format!("{secure}\ninsecure_skip_cert_checks = true"),
        ),
        journal.clone(),
    )
    .expect("source");
    sim.broadcast("B1", record(11));
    journal
        .wait_for(
            WAIT,
            "a record from the PLC with the misnamed certificate",
            |i| broadcasts(i).len() == 1,
        )
        .await;
    skipping.stop().await;
}
