//! The supplier's side of the API over real HTTP against the App, on the example plant's
//! suppliers: each reads and acknowledges its own calls and follows its own events; nobody else
//! reads a byte of them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use takt::store::{EventReader, Store};
use takt_core::identity::{Role, Scope};
use takt_tests::InProcess;
use takt_tests::driving::{api_request, broadcast_vehicles, plant_only_config, seed_tokens};

struct Supplied {
    takt: InProcess,
    http: reqwest::Client,
    base: String,
    store: Store,
    /// seatco (seats), dashline (cockpit), polyform (bumpers, roof rails).
    seatco: String,
    dashline: String,
    polyform: String,
    plant: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

impl Supplied {
    async fn start(vehicles: u64) -> Self {
        Self::start_with(vehicles, |_, _| {}).await
    }

    /// As [`Supplied::start`], with the controller's settings changed by `edit` first.
    async fn start_with(
        vehicles: u64,
        edit: impl FnOnce(&mut takt::config::Config, &std::path::Path),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = plant_only_config(dir.path());
        edit(&mut cfg, dir.path());
        let url = cfg.controller.database().url().to_owned();
        let tenant = |t: &str| Scope::Tenant { tenant: t.into() };
        let role = |role| Scope::Role { role };
        let mut tokens = seed_tokens(
            &cfg,
            &[
                (tenant("seatco"), "SeatCo JIS desk"),
                (tenant("dashline"), "Dashline planner"),
                (tenant("polyform"), "Polyform EDI gateway"),
                (role(Role::Admin), "admin"),
                (role(Role::Operator), "HMI"),
                (role(Role::Yard), "gate"),
                (role(Role::Supervisor), "shift lead"),
            ],
        )
        .await
        .into_iter();
        let plant_cfg = cfg.plant.config.clone();
        let takt = InProcess::start(cfg).await;
        broadcast_vehicles(&takt.writer, &plant_cfg, 1, vehicles, None).await;
        let mut next = || tokens.next().unwrap();
        Self {
            base: format!("http://{}", takt.addr),
            http: reqwest::Client::new(),
            store: Store::open(&url).await.unwrap(),
            seatco: next(),
            dashline: next(),
            polyform: next(),
            plant: vec![
                ("admin", next()),
                ("operator", next()),
                ("yard", next()),
                ("supervisor", next()),
            ],
            takt,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let url = format!("{}{path}", self.base);
        let (status, text, _) = api_request(&self.http, &url, method, token, body, None).await;
        (status, text)
    }

    async fn json(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, text) = self.call(method, path, Some(token), body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Every call `token` can list, following the cursor.
    async fn own_calls(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut path = "/api/v1/supplier/calls?limit=7".to_owned();
        loop {
            let page = self.json(Method::GET, &path, token, None).await;
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(next) => path = format!("/api/v1/supplier/calls?limit=7&after={next}"),
                None => return all,
            }
        }
    }

    async fn last_id(&self) -> i64 {
        self.store.last_journal_id().await.unwrap()
    }
}

fn families(calls: &[Value]) -> BTreeSet<String> {
    calls
        .iter()
        .map(|c| c["family"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_supplier_lists_exactly_its_own_calls() {
    let s = Supplied::start(12).await;
    let plant_calls: Vec<Value> = {
        let page = s
            .json(Method::GET, "/api/v1/calls?limit=1000", &s.plant[1].1, None)
            .await;
        page["items"].as_array().unwrap().clone()
    };
    for (token, tenant, expected) in [
        (&s.seatco, "seatco", vec!["seats"]),
        (&s.dashline, "dashline", vec!["cockpit"]),
        (
            &s.polyform,
            "polyform",
            vec!["front_bumper", "rear_bumper", "roof_rails"],
        ),
    ] {
        let own = s.own_calls(token).await;
        let expected_ids: Vec<&Value> = plant_calls
            .iter()
            .filter(|c| c["supplier"] == json!(tenant))
            .map(|c| &c["id"])
            .collect();
        assert!(!own.is_empty(), "{tenant} has calls");
        assert_eq!(
            own.iter().map(|c| &c["id"]).collect::<Vec<_>>(),
            expected_ids,
            "{tenant}: all its calls, in id order, through the cursor"
        );
        let got = families(&own);
        let want: BTreeSet<String> = expected.iter().map(|f| (*f).to_owned()).collect();
        assert!(got.is_subset(&want), "{tenant} got {got:?}");
        assert!(own.iter().all(|c| c["supplier"] == json!(tenant)));
    }
    // The plant's in-plant families are nobody's.
    assert!(
        plant_calls
            .iter()
            .filter(|c| ["door_panels", "wheels"].contains(&c["family"].as_str().unwrap()))
            .all(|c| c["supplier"].is_null())
    );
    s.takt.stop().await;
}

/// Who else may not: the isolation table below.
#[tokio::test]
async fn a_supplier_acknowledges_each_stage_once_and_a_bad_body_names_its_field() {
    let s = Supplied::start(4).await;
    let seats = s.own_calls(&s.seatco).await;
    let call = seats[0]["id"].as_i64().unwrap();
    let one = format!("/api/v1/supplier/calls/{call}");
    let ack = format!("{one}/acknowledge");
    let received = json!({"stage": "received"});
    let before = s.last_id().await;

    // The supplier itself: acknowledged once, answered after the commit with the entry.
    let committed = s
        .json(Method::POST, &ack, &s.seatco, Some(received.clone()))
        .await;
    assert_eq!(committed["outcome"], "applied");
    let entry = committed["journal_id"].as_i64().unwrap();
    assert!(entry > before);
    let again = s.json(Method::POST, &ack, &s.seatco, Some(received)).await;
    assert_eq!(again["outcome"], "ignored");
    let built = s
        .json(
            Method::POST,
            &ack,
            &s.seatco,
            Some(json!({"stage": "built"})),
        )
        .await;
    assert_eq!(built["outcome"], "applied");
    let row = s.json(Method::GET, &one, &s.seatco, None).await;
    assert!(
        row["received_at"].is_string() && row["built_at"].is_string(),
        "{row}"
    );
    let journaled = s.store.journal_after(before, 10).await.unwrap();
    let actors: Vec<_> = journaled
        .iter()
        .filter(|e| e.input.kind() == "acknowledge_call")
        .map(|e| e.origin.actor.clone().unwrap_or_default())
        .collect();
    assert_eq!(actors.len(), 3);
    assert!(
        actors.iter().all(|a| a.starts_with("SeatCo JIS desk")),
        "{actors:?}"
    );

    // Bad bodies name the field and journal nothing.
    let before = s.last_id().await;
    for body in [
        json!({}),
        json!({"stage": "shipped"}),
        json!({"stage": "built", "x": 1}),
    ] {
        let (status, text) = s
            .call(Method::POST, &ack, Some(&s.seatco), Some(body))
            .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{status}: {text}"
        );
        assert!(text.contains("field"), "{text}");
    }
    assert_eq!(s.last_id().await, before);
    s.takt.stop().await;
}

#[tokio::test]
async fn a_suppliers_stream_and_outbox_hold_its_own_events_only() {
    let s = Supplied::start(10).await;
    let seatco = s
        .store
        .events_after::<takt::api::events::EventView>(
            &EventReader::Tenant("seatco".into()),
            0,
            10_000,
        )
        .await
        .unwrap();
    assert!(!seatco.is_empty());
    let kinds: BTreeSet<&str> = seatco.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains("call_created") && kinds.contains("supplier_takt_status"),
        "{kinds:?}"
    );
    for e in &seatco {
        assert_eq!(e.tenant.as_deref(), Some("seatco"));
        // A call, rack or coverage names its family; a takt status each of the supplier's.
        let families: Vec<&Value> = match e.payload["families"].as_array() {
            Some(list) => list.iter().map(|f| &f["family"]).collect(),
            None => vec![&e.payload["family"]],
        };
        assert!(
            !families.is_empty() && families.iter().all(|f| *f == "seats"),
            "event {} is another's: {}",
            e.id,
            e.payload
        );
    }
    // The same through SSE: the backlog of seatco's events, in id order, then nothing else.
    let response = s
        .http
        .get(format!("{}/api/v1/events?after=0", s.base))
        .bearer_auth(&s.seatco)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut response = response;
    let mut text = String::new();
    let want = seatco.len();
    let ids_in = |text: &str| -> Vec<i64> {
        text.lines()
            .filter_map(|l| l.strip_prefix("id:"))
            .map(|id| id.trim().parse().unwrap())
            .collect()
    };
    while ids_in(&text).len() < want {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), response.chunk())
            .await
            .expect("events within 20 s")
            .unwrap()
            .expect("open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(
        ids_in(&text),
        seatco.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    assert!(
        !text.contains("cockpit") && !text.contains("door_panels"),
        "{text}"
    );
    drop(response);
    s.takt.stop().await;
}

/// The slots of a rack as an ASN lists them, from the plant's list of racks.
async fn asn_racks(s: &Supplied, family: &str, count: usize) -> Vec<Value> {
    let page = s
        .json(Method::GET, "/api/v1/racks?limit=1000", &s.plant[1].1, None)
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["family"] == family && r["status"] == "closed")
        .take(count)
        .map(|r| {
            let slots: Vec<Value> = r["slots"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.is_null())
                .map(|(i, c)| json!({"slot": i + 1, "call": c}))
                .collect();
            json!({"rack": r["id"], "slots": slots})
        })
        .collect()
}

#[tokio::test]
async fn an_asn_ships_racks_a_wrong_one_names_rack_and_slot_and_ships_nothing() {
    // 13 vehicles: two full racks of seats (6 each), none installed yet (45 positions on).
    let s = Supplied::start(13).await;
    let racks = asn_racks(&s, "seats", 2).await;
    assert_eq!(racks.len(), 2, "two closed seat racks");
    let eta = (chrono::Utc::now() + chrono::TimeDelta::minutes(35)).to_rfc3339();
    let asn = |racks: Vec<Value>| {
        json!({"number": "SC-4711", "carrier": "rhein-jis", "trailer": "L-SC 118",
               "eta": eta, "racks": racks})
    };
    // Two calls swapped in the second rack: refused whole, naming rack and slot.
    let mut swapped = racks.clone();
    let slots = swapped[1]["slots"].as_array_mut().unwrap();
    let (a, b) = (slots[2]["call"].clone(), slots[3]["call"].clone());
    slots[2]["call"] = b;
    slots[3]["call"] = a;
    let (status, text) = s
        .call(
            Method::POST,
            "/api/v1/supplier/shipments",
            Some(&s.seatco),
            Some(asn(swapped)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["field"], "racks[1].slots[2].call", "{problem}");
    assert!(
        problem["journal_id"].is_i64(),
        "the refusal is journaled: {problem}"
    );
    let rack_ids: Vec<&Value> = racks.iter().map(|r| &r["rack"]).collect();
    let still_closed = asn_racks(&s, "seats", 2).await;
    assert_eq!(
        still_closed.iter().map(|r| &r["rack"]).collect::<Vec<_>>(),
        rack_ids,
        "nothing shipped"
    );
    // Another supplier cannot ship seatco's racks: to it they do not exist.
    let (status, text) = s
        .call(
            Method::POST,
            "/api/v1/supplier/shipments",
            Some(&s.dashline),
            Some(asn(racks.clone())),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(
        text.contains("racks[0].rack") && text.contains("of yours"),
        "{text}"
    );

    let committed = s
        .json(
            Method::POST,
            "/api/v1/supplier/shipments",
            &s.seatco,
            Some(asn(racks.clone())),
        )
        .await;
    assert_eq!(committed["outcome"], "applied", "{committed}");
    let own = s
        .json(Method::GET, "/api/v1/supplier/shipments", &s.seatco, None)
        .await;
    let items = own["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            &items[0]["number"],
            &items[0]["status"],
            &items[0]["carrier"]
        ),
        (&json!("SC-4711"), &json!("in_transit"), &json!("rhein-jis"))
    );
    assert_eq!(
        items[0]["racks"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        rack_ids
    );
    let id = items[0]["id"].as_i64().unwrap();
    let one = format!("/api/v1/supplier/shipments/{id}");
    s.json(Method::GET, &one, &s.seatco, None).await;
    for token in [&s.dashline, &s.polyform] {
        let (status, text) = s.call(Method::GET, &one, Some(token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
        assert!(!text.contains("SC-4711"), "{text}");
        let theirs = s
            .json(Method::GET, "/api/v1/supplier/shipments", token, None)
            .await;
        assert_eq!(theirs["items"], json!([]));
    }
    // The plant sees every supplier's shipments; its racks and calls are on their way.
    let plant = s
        .json(Method::GET, "/api/v1/shipments", &s.plant[1].1, None)
        .await;
    assert_eq!(plant["items"].as_array().unwrap().len(), 1);
    let calls = s.own_calls(&s.seatco).await;
    let shipped: Vec<&Value> = racks
        .iter()
        .flat_map(|r| r["slots"].as_array().unwrap().iter().map(|s| &s["call"]))
        .collect();
    for call in &calls {
        if shipped.contains(&&call["id"]) {
            assert_eq!(call["status"], "shipped", "{call}");
        }
    }
    // A later ETA: another supplier cannot move it; the past is refused by field; in time is
    // applied. Then the yard reports the trailer in.
    let eta_path = format!("{one}/eta");
    let in_time = (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339();
    let (status, text) = s
        .call(
            Method::POST,
            &eta_path,
            Some(&s.dashline),
            Some(json!({"eta": in_time})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let (status, text) = s
        .call(
            Method::POST,
            &eta_path,
            Some(&s.seatco),
            Some(json!({"eta": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains(r#""field":"eta""#), "{text}");
    let moved = s
        .json(
            Method::POST,
            &eta_path,
            &s.seatco,
            Some(json!({"eta": in_time})),
        )
        .await;
    assert_eq!(moved["outcome"], "applied", "{moved}");
    let arrived_path = format!("/api/v1/shipments/{id}/arrived");
    let (status, _) = s
        .call(Method::POST, &arrived_path, Some(&s.seatco), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a supplier does not report its own arrival"
    );
    let yard = &s.plant[2].1;
    let arrived = s.json(Method::POST, &arrived_path, yard, None).await;
    assert_eq!(arrived["outcome"], "applied", "{arrived}");
    let seen = s.json(Method::GET, &one, &s.seatco, None).await;
    assert_eq!(seen["status"], "arrived", "{seen}");
    assert!(seen["arrived_at"].is_string());

    // The same ASN again (no Idempotency-Key): its number is taken.
    let (status, text) = s
        .call(
            Method::POST,
            "/api/v1/supplier/shipments",
            Some(&s.seatco),
            Some(asn(racks)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.contains(r#""field":"number""#), "{text}");
    s.takt.stop().await;
}

/// What pydifact (an EDIFACT parser nobody here wrote) reads in `interchange`.
fn parsed_by_pydifact(interchange: &[u8]) -> Value {
    let python = takt_tests::venv_python();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), interchange).unwrap();
    let script = takt_tests::repo_root().join("tests/interop/deljit_parse.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pydifact refused it: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(interchange)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn deljit(s: &Supplied, token: &str, after: i64) -> (StatusCode, i64, Vec<u8>) {
    let response = s
        .http
        .get(format!("{}/api/v1/supplier/deljit?after={after}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let last = response
        .headers()
        .get("takt-last-event-id")
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .unwrap_or(-1);
    if status == StatusCode::OK {
        assert_eq!(response.headers()["content-type"], "application/EDIFACT");
    }
    (status, last, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn deljit_read_by_an_independent_parser_matches_the_calls_segment_by_segment() {
    let s = Supplied::start(8).await;
    let calls = s.own_calls(&s.seatco).await;
    assert!(
        calls.len() >= 8,
        "one seat call per vehicle: {}",
        calls.len()
    );
    let (status, last, body) = deljit(&s, &s.seatco, 0).await;
    assert_eq!(status, StatusCode::OK);
    let parsed = parsed_by_pydifact(&body);
    let messages = parsed["messages"].as_array().unwrap();
    // One message per call created (no call changed yet), in call order.
    assert_eq!(messages.len(), calls.len(), "{parsed}");
    assert_eq!(parsed["recipient"][0], "seatco", "{parsed}");
    for (message, call) in messages.iter().zip(&calls) {
        assert_eq!(message["type"], "DELJIT");
        let seg = |tag: &str| -> Vec<&Value> {
            message["segments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s[0] == tag)
                .map(|s| &s[1])
                .collect()
        };
        let bgm = seg("BGM");
        assert_eq!(
            (&bgm[0][0], &bgm[0][2]),
            (&json!("242"), &json!("9")),
            "{message}"
        );
        let sequence = seg("SEQ");
        assert_eq!(
            sequence[0][1],
            json!([call["seq"].to_string(), "1"]),
            "seats come from broadcast 1: {message}"
        );
        assert_eq!(seg("GIR")[0][1], json!([call["vin"], "VV"]));
        assert_eq!(seg("LIN")[0][2], json!([call["part"], "IN"]));
        assert_eq!(seg("PIA")[0][1], json!(["seats", "ZZZ"]));
        assert_eq!(seg("QTY")[0][0], json!(["113", "1"]));
    }
    // The envelope counts what it holds: UNZ the messages, each UNT its message's segments
    // (as pydifact's tokenizer counts them in the bytes written).
    assert_eq!(parsed["unz"][0], messages.len().to_string(), "{parsed}");
    assert_eq!(parsed["unz"][1], parsed["control_reference"]);
    assert_eq!(parsed["unh"], messages.len());
    for unt in parsed["unt"].as_array().unwrap() {
        assert_eq!(unt["declared"][0], unt["counted"].to_string(), "{unt}");
    }
    // Resumed from its cursor: nothing new, 204 and the same cursor.
    let (status, again, body) = deljit(&s, &s.seatco, last).await;
    assert_eq!(
        (status, again, body.len()),
        (StatusCode::NO_CONTENT, last, 0)
    );
    // Another supplier's DELJIT holds its own calls only.
    let (status, _, theirs) = deljit(&s, &s.dashline, 0).await;
    assert_eq!(status, StatusCode::OK);
    let theirs = String::from_utf8(theirs).unwrap();
    assert!(
        theirs.contains("cockpit") && !theirs.contains("seats"),
        "{theirs}"
    );
    // Plant tokens read the plant's lists, not a supplier's messages.
    let (status, _, _) = deljit(&s, &s.plant[1].1, 0).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.takt.stop().await;
}

/// Seatco's data no one else may see a byte of: its family, its ASN and trailer, its parts.
const SEATCO_MARKERS: &[&str] = &["seats", "SC-9001", "L-SC 207", "ST-"];

fn leaks(text: &str) -> Option<&'static str> {
    SEATCO_MARKERS.iter().copied().find(|m| text.contains(m))
}

#[tokio::test]
async fn every_supplier_endpoint_and_stream_keeps_each_tenants_data_its_own() {
    let s = Supplied::start(13).await;
    let racks = asn_racks(&s, "seats", 1).await;
    let eta = (chrono::Utc::now() + chrono::TimeDelta::minutes(30)).to_rfc3339();
    let asn = json!({"number": "SC-9001", "carrier": "rhein-jis", "trailer": "L-SC 207",
                     "eta": eta, "racks": racks});
    let shipped = s
        .json(
            Method::POST,
            "/api/v1/supplier/shipments",
            &s.seatco,
            Some(asn.clone()),
        )
        .await;
    assert_eq!(shipped["outcome"], "applied");
    let shipment = s
        .json(Method::GET, "/api/v1/supplier/shipments", &s.seatco, None)
        .await["items"][0]["id"]
        .as_i64()
        .unwrap();
    let call = s.own_calls(&s.seatco).await[0]["id"].as_i64().unwrap();
    // A revoked token of seatco's own.
    let admin = &s.plant[0].1;
    let (status, made) = s
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(admin),
            Some(json!({"label": "old SeatCo tablet", "tenant": "seatco"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let made: Value = serde_json::from_str(&made).unwrap();
    let revoked = made["token"].as_str().unwrap().to_owned();
    let revoke = format!("/api/v1/tokens/{}/revoke", made["id"].as_str().unwrap());
    s.json(Method::POST, &revoke, admin, None).await;
    let forged = format!("takt_{}_{}", &s.seatco[5..13], "0".repeat(64));

    // What another tenant gets: 404 for one of seatco's things, its own (empty of seatco's) list.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Other {
        NotFound,
        OwnList,
    }
    let later = json!({"eta": (chrono::Utc::now() + chrono::TimeDelta::minutes(50)).to_rfc3339()});
    let endpoints: Vec<(Method, String, Option<Value>, Other)> = vec![
        (
            Method::GET,
            "/api/v1/supplier/calls".into(),
            None,
            Other::OwnList,
        ),
        (
            Method::GET,
            format!("/api/v1/supplier/calls/{call}"),
            None,
            Other::NotFound,
        ),
        (
            Method::POST,
            format!("/api/v1/supplier/calls/{call}/acknowledge"),
            Some(json!({"stage": "built"})),
            Other::NotFound,
        ),
        (
            Method::GET,
            "/api/v1/supplier/shipments".into(),
            None,
            Other::OwnList,
        ),
        (
            Method::GET,
            format!("/api/v1/supplier/shipments/{shipment}"),
            None,
            Other::NotFound,
        ),
        (
            Method::POST,
            format!("/api/v1/supplier/shipments/{shipment}/eta"),
            Some(later),
            Other::NotFound,
        ),
        (
            Method::GET,
            "/api/v1/supplier/deljit?after=0".into(),
            None,
            Other::OwnList,
        ),
        (
            Method::GET,
            "/api/v1/supplier/forecast?from=2026-01-01T00:00:00Z&to=2026-01-10T00:00:00Z".into(),
            None,
            Other::OwnList,
        ),
        (
            Method::GET,
            "/api/v1/supplier/kpis?from=2026-12-01T00:00:00Z&to=2026-12-14T00:00:00Z".into(),
            None,
            Other::OwnList,
        ),
    ];
    let mut callers: Vec<(&str, Option<&str>, Option<StatusCode>)> = vec![
        ("no token", None, Some(StatusCode::UNAUTHORIZED)),
        (
            "a malformed token",
            Some("takt_x"),
            Some(StatusCode::UNAUTHORIZED),
        ),
        (
            "a forged token",
            Some(&forged),
            Some(StatusCode::UNAUTHORIZED),
        ),
        (
            "seatco's revoked token",
            Some(&revoked),
            Some(StatusCode::UNAUTHORIZED),
        ),
        ("dashline", Some(&s.dashline), None),
        ("polyform", Some(&s.polyform), None),
    ];
    for (role, token) in &s.plant {
        callers.push((role, Some(token.as_str()), Some(StatusCode::FORBIDDEN)));
    }
    let before = s.last_id().await;
    let mut checked = 0;
    for (method, path, body, other) in &endpoints {
        for (who, token, fixed) in &callers {
            let (status, text) = s.call(method.clone(), path, *token, body.clone()).await;
            let expected = match (fixed, other) {
                (Some(code), _) => vec![*code],
                (None, Other::NotFound) => vec![StatusCode::NOT_FOUND],
                (None, Other::OwnList) => vec![StatusCode::OK, StatusCode::NO_CONTENT],
            };
            assert!(
                expected.contains(&status),
                "{method} {path} by {who}: {status} {text}"
            );
            if let Some(marker) = leaks(&text) {
                panic!("{method} {path} by {who} leaked `{marker}`: {text}");
            }
            if !status.is_success() {
                let problem: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(problem["status"], status.as_u16(), "{text}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, endpoints.len() * callers.len());
    assert_eq!(
        s.last_id().await,
        before,
        "a refused request journaled something"
    );

    // Another tenant sending an ASN for seatco's rack learns no more than for a rack nobody
    // has (the refusal is journaled: a refused ASN is the supplier's own record).
    let mut theirs = asn.clone();
    theirs["number"] = json!("DL-1");
    let (_, for_seatcos) = s
        .call(
            Method::POST,
            "/api/v1/supplier/shipments",
            Some(&s.dashline),
            Some(theirs.clone()),
        )
        .await;
    theirs["number"] = json!("DL-2");
    theirs["racks"][0]["rack"] = json!("seats-999999");
    let (_, for_none) = s
        .call(
            Method::POST,
            "/api/v1/supplier/shipments",
            Some(&s.dashline),
            Some(theirs),
        )
        .await;
    let detail = |t: &str| {
        let v: Value = serde_json::from_str(t).unwrap();
        (v["status"].clone(), v["field"].clone())
    };
    assert_eq!(detail(&for_seatcos), detail(&for_none));

    // The streams: the other tenants' backlogs hold none of seatco's events.
    for (who, token, tenant) in [
        ("dashline", &s.dashline, "dashline"),
        ("polyform", &s.polyform, "polyform"),
    ] {
        let own = s
            .store
            .events_after::<takt::api::events::EventView>(
                &EventReader::Tenant(tenant.into()),
                0,
                10_000,
            )
            .await
            .unwrap();
        let mut response = s
            .http
            .get(format!("{}/api/v1/events?after=0", s.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let mut text = String::new();
        while text.lines().filter(|l| l.starts_with("id:")).count() < own.len() {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), response.chunk())
                .await
                .expect("the backlog within 20 s")
                .unwrap()
                .expect("open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(leaks(&text).is_none(), "{who}'s stream: {text}");
    }
    s.takt.stop().await;
}

#[tokio::test]
async fn a_plan_is_shared_as_demand_and_compared_with_what_the_broadcast_brought() {
    let s = Supplied::start(12).await;
    // The plan the MES would have sent for exactly these vehicles: same times, models, options.
    let vehicles = s
        .json(
            Method::GET,
            "/api/v1/vehicles?limit=1000",
            &s.plant[1].1,
            None,
        )
        .await;
    let planned: Vec<Value> = vehicles["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["point"] == "B1")
        .map(|v| json!({"planned_at": v["broadcast_at"], "model": v["model"], "options": v["options"]}))
        .collect();
    assert_eq!(planned.len(), 12);
    let supervisor = &s.plant[3].1;
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/forecast",
            Some(&s.plant[1].1),
            Some(json!({"line": "A1", "vehicles": planned})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an operator does not post plans"
    );
    let mut bad = planned.clone();
    bad[3]["model"] = json!("XX9");
    let (status, text) = s
        .call(
            Method::POST,
            "/api/v1/forecast",
            Some(supervisor),
            Some(json!({"line": "A1", "vehicles": bad})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains(r#""field":"vehicles[3].model""#), "{text}");
    let posted = s
        .json(
            Method::POST,
            "/api/v1/forecast",
            supervisor,
            Some(json!({"line": "A1", "vehicles": planned})),
        )
        .await;
    assert_eq!(posted["outcome"], "applied", "{posted}");
    let window = {
        let from = chrono::Utc::now() - chrono::TimeDelta::hours(2);
        let to = from + chrono::TimeDelta::hours(6);
        format!(
            "/api/v1/supplier/forecast?from={}&to={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let seats = s.json(Method::GET, &window, &s.seatco, None).await;
    let demand = seats["demand"].as_array().unwrap();
    assert!(!demand.is_empty(), "{seats}");
    for row in demand {
        assert_eq!(row["family"], "seats", "{row}");
        assert_eq!(row["forecast"], row["actual"], "the same vehicles: {row}");
    }
    for part in seats["accuracy"].as_array().unwrap() {
        assert_eq!(part["accuracy"], 1.0, "{part}");
    }
    let total: u64 = demand.iter().map(|r| r["actual"].as_u64().unwrap()).sum();
    assert_eq!(total, 12, "a seat set per vehicle");
    // The next plan forgets the last vehicle: one part short in one hour.
    let fewer: Vec<Value> = planned[..11].to_vec();
    s.json(
        Method::POST,
        "/api/v1/forecast",
        supervisor,
        Some(json!({"line": "A1", "vehicles": fewer})),
    )
    .await;
    let seats = s.json(Method::GET, &window, &s.seatco, None).await;
    let short: Vec<&Value> = seats["accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["accuracy"] != 1.0)
        .collect();
    assert_eq!(short.len(), 1, "{seats}");
    let actual = short[0]["actual"].as_f64().unwrap();
    assert_eq!(short[0]["forecast"].as_f64().unwrap(), actual - 1.0);
    assert!((short[0]["accuracy"].as_f64().unwrap() - (1.0 - 1.0 / actual)).abs() < 1e-9);
    // Another supplier reads its own families only; the plant's lists are not for it to read.
    let cockpits = s.json(Method::GET, &window, &s.dashline, None).await;
    let theirs = cockpits["demand"].as_array().unwrap();
    assert!(
        !theirs.is_empty() && theirs.iter().all(|r| r["family"] == "cockpit"),
        "{cockpits}"
    );
    assert!(leaks(&cockpits.to_string()).is_none());
    s.takt.stop().await;
}

/// The DELJIT files in `folder`, in name order, each as pydifact reads it.
fn deljit_files(folder: &std::path::Path) -> Vec<(String, Value)> {
    let mut names: Vec<_> = std::fs::read_dir(folder)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "edi"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, parsed_by_pydifact(&std::fs::read(&p).unwrap()))
        })
        .collect()
}

/// The folder's files once they hold `messages` messages, or what they hold after 10 s: a
/// bounded wait for the condition (the folder follows each commit), not a sleep.
async fn files_holding(folder: &std::path::Path, messages: usize) -> Vec<(String, Value)> {
    let mut files = Vec::new();
    for _ in 0..200 {
        files = deljit_files(folder);
        if vins_in(&files).len() >= messages {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    files
}

/// The GIR VIN of every message of every file, in order.
fn vins_in(files: &[(String, Value)]) -> Vec<String> {
    files
        .iter()
        .flat_map(|(_, parsed)| parsed["messages"].as_array().unwrap().clone())
        .map(|m| {
            let gir = m["segments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s[0] == "GIR")
                .unwrap()
                .clone();
            gir[1][1][0].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_drop_folder_gets_each_call_event_once_in_whole_files_by_cursor() {
    let s = Supplied::start_with(6, |cfg, dir| {
        cfg.controller.deljit_dir = Some(dir.join("deljit"));
    })
    .await;
    let folder = s._dir.path().join("deljit/seatco");
    let expected = |calls: &[Value]| -> Vec<String> {
        calls
            .iter()
            .map(|c| c["vin"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut files = files_holding(&folder, 6).await;
    let calls = s.own_calls(&s.seatco).await;
    assert_eq!(
        vins_in(&files),
        expected(&calls),
        "every call of seatco's, once, in order"
    );
    // More vehicles: new files with only the new calls.
    let plant = takt::config::parse(
        &s._dir.path().join("plant.toml"),
        &takt_tests::example_plant_only(),
    )
    .unwrap();
    broadcast_vehicles(&s.takt.writer, &plant.plant.config, 7, 6, None).await;
    files = files_holding(&folder, 12).await;
    let calls = s.own_calls(&s.seatco).await;
    assert_eq!(
        vins_in(&files),
        expected(&calls),
        "nothing twice across files"
    );
    assert!(
        files.len() >= 2,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, parsed) in &files {
        assert!(
            name.starts_with("DELJIT-seatco-") && name.ends_with(".edi"),
            "{name}"
        );
        assert_eq!(parsed["recipient"][0], "seatco");
    }
    // Another supplier's folder holds its own calls only.
    let theirs = deljit_files(&s._dir.path().join("deljit/dashline"));
    assert!(!theirs.is_empty());
    for (_, parsed) in &theirs {
        assert!(leaks(&parsed.to_string()).is_none(), "{parsed}");
    }
    s.takt.stop().await;
}

#[tokio::test]
async fn both_sides_read_the_same_kpis_computed_from_the_journal() {
    let s = Supplied::start(13).await;
    let racks = asn_racks(&s, "seats", 1).await;
    let rack = racks[0]["rack"].as_str().unwrap().to_owned();
    let eta = (chrono::Utc::now() + chrono::TimeDelta::minutes(20)).to_rfc3339();
    let asn = json!({"number": "SC-77", "carrier": "rhein-jis", "trailer": "L-SC 1",
                     "eta": eta, "racks": racks});
    s.json(
        Method::POST,
        "/api/v1/supplier/shipments",
        &s.seatco,
        Some(asn),
    )
    .await;
    let yard = &s.plant[2].1;
    let delivered = s
        .json(
            Method::POST,
            &format!("/api/v1/racks/{rack}/delivered"),
            yard,
            None,
        )
        .await;
    assert_eq!(delivered["outcome"], "applied", "{delivered}");
    let period = {
        let from = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        let to = from + chrono::TimeDelta::hours(4);
        format!(
            "from={}&to={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let own = s
        .json(
            Method::GET,
            &format!("/api/v1/supplier/kpis?{period}"),
            &s.seatco,
            None,
        )
        .await;
    let plant = s
        .json(
            Method::GET,
            &format!("/api/v1/suppliers/seatco/kpis?{period}"),
            &s.plant[1].1,
            None,
        )
        .await;
    assert_eq!(own, plant, "the same numbers for both sides");
    let seats = &own["families"][0];
    assert_eq!(seats["family"], "seats");
    let calls = s.own_calls(&s.seatco).await;
    assert_eq!(seats["calls"], calls.len(), "{own}");
    assert_eq!(
        seats["delivered_on_time"], 6,
        "one rack of six delivered, before its calls are due"
    );
    let otif = seats["otif"].as_f64().unwrap();
    assert!((otif - 6.0 / calls.len() as f64).abs() < 1e-9, "{otif}");
    assert!(seats["acknowledgement_p50_s"].as_f64().unwrap() >= 0.0);
    let (p50, p95) = (
        seats["lead_time_p50_min"].as_f64().unwrap(),
        seats["lead_time_p95_min"].as_f64().unwrap(),
    );
    assert!((seats["lead_time_variability_min"].as_f64().unwrap() - (p95 - p50)).abs() < 1e-9);
    // Whose they are: a supplier reads its own only; the plant's endpoint is for plant users.
    let theirs = s
        .json(
            Method::GET,
            &format!("/api/v1/supplier/kpis?{period}"),
            &s.dashline,
            None,
        )
        .await;
    assert_eq!(theirs["supplier"], "dashline");
    assert!(leaks(&theirs.to_string()).is_none(), "{theirs}");
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/suppliers/seatco/kpis?{period}"),
            Some(&s.dashline),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/suppliers/nobody/kpis?{period}"),
            Some(&s.plant[1].1),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.takt.stop().await;
}
