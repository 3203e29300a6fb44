//! The plant API over real HTTP against the App: tokens and roles, the isolation table over
//! every endpoint, commands answered after their commit, idempotent retries, bad bodies, the
//! OpenAPI document.
#![allow(clippy::unwrap_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use takt::store::{JournalEntry, Store};
use takt_core::AlarmInput;
use takt_core::identity::{Role, Scope};
use takt_core::{AlarmKind, Input};
use takt_tests::InProcess;
use takt_tests::driving::{api_request, broadcast_vehicles, plant_only_config, seed_tokens};

fn role(role: Role) -> Scope {
    Scope::Role { role }
}

/// A client for one controller.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        let url = format!("{}{path}", self.base);
        let (status, text, content_type) =
            api_request(&self.http, &url, method, token, body, key).await;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json, content_type)
    }
}

/// Journal entries made through the API (with an actor) after `after`.
async fn api_entries(store: &Store, after: i64) -> Vec<JournalEntry> {
    store
        .journal_after(after, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.origin.actor.is_some())
        .collect()
}

async fn last_id(store: &Store) -> i64 {
    store.last_journal_id().await.unwrap()
}

struct Plant {
    takt: InProcess,
    api: Api,
    store: Store,
    admin: String,
    operator: String,
    yard: String,
    supervisor: String,
    tenant: String,
    _dir: tempfile::TempDir,
}

async fn plant() -> Plant {
    let dir = tempfile::tempdir().unwrap();
    let cfg = plant_only_config(dir.path());
    let url = cfg.controller.database().url().to_owned();
    let tokens = seed_tokens(
        &cfg,
        &[
            (role(Role::Admin), "shift admin"),
            (role(Role::Operator), "HMI A1"),
            (role(Role::Yard), "gate"),
            (role(Role::Supervisor), "shift lead"),
            (
                Scope::Tenant {
                    tenant: "seatco".into(),
                },
                "Seats planner",
            ),
        ],
    )
    .await;
    let takt = InProcess::start(cfg).await;
    let store = Store::open(&url).await.unwrap();
    let api = Api {
        base: format!("http://{}", takt.addr),
        http: reqwest::Client::new(),
    };
    let [admin, operator, yard, supervisor, tenant] = <[String; 5]>::try_from(tokens).unwrap();
    Plant {
        takt,
        api,
        store,
        admin,
        operator,
        yard,
        supervisor,
        tenant,
        _dir: dir,
    }
}

/// An alarm raised the way a plant adapter raises one.
async fn raise_alarm(plant: &Plant, subject: &str) -> String {
    plant
        .takt
        .writer
        .submit(Input::Alarms(AlarmInput::Condition {
            alarm: AlarmKind::DeviceOffline,
            subject: subject.into(),
            active: true,
            message: "no answer".into(),
        }))
        .await
        .unwrap();
    format!("device_offline:{subject}")
}

fn encode(id: &str) -> String {
    id.replace(':', "%3A").replace('/', "%2F")
}

#[tokio::test]
async fn every_endpoint_refuses_whoever_it_is_not_for_and_journals_nothing() {
    let p = plant().await;
    let alarm = encode(&raise_alarm(&p, "PTL-1").await);
    let revoked = {
        let (status, made, _) = p
            .api
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(&p.admin),
                Some(json!({"label": "old HMI", "role": "operator"})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let id = made["id"].as_str().unwrap();
        let (status, _, _) = p
            .api
            .call(
                Method::POST,
                &format!("/api/v1/tokens/{id}/revoke"),
                Some(&p.admin),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        made["token"].as_str().unwrap().to_owned()
    };
    let forged = format!("takt_{}_{}", &p.operator[5..13], "0".repeat(64));
    let shelve = json!({"until": "2099-01-01T00:00:00Z", "reason": "maintenance"});
    let reason = json!({"reason": "test"});
    // (method, path, body, which plant roles besides admin may)
    const O: &str = "operator";
    const Y: &str = "yard";
    const S: &str = "supervisor";
    let endpoints: Vec<(Method, String, Option<Value>, &[&str])> = vec![
        (Method::GET, "/api/v1/alarms".into(), None, &[O, Y, S]),
        (Method::GET, "/api/v1/calls".into(), None, &[O, Y, S]),
        (Method::GET, "/api/v1/racks".into(), None, &[O, Y, S]),
        (Method::GET, "/api/v1/vehicles".into(), None, &[O, Y, S]),
        (Method::GET, "/api/v1/tasks".into(), None, &[O, Y, S]),
        (Method::GET, "/api/v1/lines".into(), None, &[O, Y, S]),
        (Method::GET, "/api/v1/shipments".into(), None, &[O, Y, S]),
        (
            Method::GET,
            "/api/v1/suppliers/seatco/kpis?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"
                .into(),
            None,
            &[O, Y, S],
        ),
        (
            Method::GET,
            "/api/v1/lines/A1/coverage".into(),
            None,
            &[O, Y, S],
        ),
        (Method::GET, "/api/v1/tokens".into(), None, &[]),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({"label": "x", "role": "operator"})),
            &[],
        ),
        (
            Method::POST,
            "/api/v1/tokens/00000000/revoke".into(),
            None,
            &[],
        ),
        (
            Method::POST,
            format!("/api/v1/alarms/{alarm}/acknowledge"),
            None,
            &[O, S],
        ),
        (
            Method::POST,
            format!("/api/v1/alarms/{alarm}/shelve"),
            Some(shelve),
            &[S],
        ),
        (
            Method::POST,
            format!("/api/v1/alarms/{alarm}/unshelve"),
            Some(reason),
            &[S],
        ),
        (
            Method::POST,
            "/api/v1/calls/1/resolve".into(),
            Some(json!({"part": "P1", "reason": "r"})),
            &[S],
        ),
        (
            Method::POST,
            "/api/v1/families/seats/close-rack".into(),
            None,
            &[O, S],
        ),
        (
            Method::POST,
            "/api/v1/racks/R1/shipped".into(),
            None,
            &[O, Y, S],
        ),
        (
            Method::POST,
            "/api/v1/racks/R1/delivered".into(),
            None,
            &[O, Y, S],
        ),
        (
            Method::POST,
            "/api/v1/forecast".into(),
            Some(json!({"line": "A1", "vehicles": []})),
            &[S],
        ),
        (
            Method::POST,
            "/api/v1/shipments/1/arrived".into(),
            None,
            &[Y, S],
        ),
        (
            Method::POST,
            "/api/v1/stations/S1/reset".into(),
            None,
            &[O, S],
        ),
        (
            Method::POST,
            "/api/v1/lines/A1/resequence".into(),
            Some(json!({"point": "B1", "vin": "V", "seq": 1, "reason": "r"})),
            &[S],
        ),
        (
            Method::POST,
            "/api/v1/lines/A1/cancel".into(),
            Some(json!({"vin": "V", "reason": "r"})),
            &[S],
        ),
    ];
    let before = last_id(&p.store).await;
    let mut checked = 0;
    for (method, path, body, allowed) in &endpoints {
        let mut callers: Vec<(&str, Option<&str>, StatusCode)> = vec![
            ("no token", None, StatusCode::UNAUTHORIZED),
            (
                "a malformed token",
                Some("takt_nonsense"),
                StatusCode::UNAUTHORIZED,
            ),
            ("a forged token", Some(&forged), StatusCode::UNAUTHORIZED),
            ("a revoked token", Some(&revoked), StatusCode::UNAUTHORIZED),
            ("a tenant's token", Some(&p.tenant), StatusCode::FORBIDDEN),
        ];
        for (name, token) in [(O, &p.operator), (Y, &p.yard), (S, &p.supervisor)] {
            if !allowed.contains(&name) {
                callers.push((name, Some(token.as_str()), StatusCode::FORBIDDEN));
            }
        }
        for (who, token, expected) in callers {
            let (status, answer, content_type) = p
                .api
                .call(method.clone(), path, token, body.clone(), None)
                .await;
            assert_eq!(status, expected, "{method} {path} with {who}: {answer}");
            assert_eq!(
                content_type.as_deref(),
                Some("application/problem+json"),
                "{method} {path} with {who}"
            );
            assert_eq!(answer["status"], expected.as_u16(), "{answer}");
            let text = answer.to_string();
            assert!(
                !text.contains("PTL-1") && !text.contains("HMI A1"),
                "{method} {path} with {who} leaked plant data: {text}"
            );
            checked += 1;
        }
    }
    assert!(checked >= endpoints.len() * 5, "{checked}");
    // The stream is for tenants too (their own events only: see the stream test), but never
    // for a caller without a good token.
    for (who, token) in [
        ("no token", None),
        ("a malformed token", Some("takt_nonsense")),
        ("a forged token", Some(forged.as_str())),
        ("a revoked token", Some(revoked.as_str())),
    ] {
        for stream in ["/api/v1/events?after=0", "/api/v1/events/ws?after=0"] {
            let (status, answer, content_type) =
                p.api.call(Method::GET, stream, token, None, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{stream} with {who}: {answer}"
            );
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        }
    }
    assert!(
        api_entries(&p.store, before).await.is_empty(),
        "a refused request journaled something"
    );
    p.takt.stop().await;
}

#[tokio::test]
async fn a_command_answers_after_its_commit_and_a_retry_journals_once() {
    let p = plant().await;
    let alarm = raise_alarm(&p, "PTL-2").await;
    let (status, page, _) = p
        .api
        .call(Method::GET, "/api/v1/alarms", Some(&p.operator), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == alarm.as_str()),
        "{page}"
    );
    let path = format!("/api/v1/alarms/{}/acknowledge", encode(&alarm));
    let (status, first, _) = p
        .api
        .call(Method::POST, &path, Some(&p.operator), None, Some("ack-1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["outcome"], "applied");
    assert_eq!(first["repeat"], false);
    let id = first["journal_id"].as_i64().unwrap();
    // Answered after the commit: the entry is in the store already, with who gave it.
    let entry = p.store.journal_after(id - 1, 1).await.unwrap().remove(0);
    assert_eq!(entry.id, id);
    assert_eq!(
        entry.input,
        Input::Alarms(AlarmInput::Acknowledge {
            alarm: alarm.clone()
        })
    );
    assert!(
        entry
            .origin
            .actor
            .as_deref()
            .unwrap()
            .starts_with("HMI A1 (token "),
        "{entry:?}"
    );
    assert_eq!(entry.origin.idempotency_key.as_deref(), Some("ack-1"));

    let (status, again, _) = p
        .api
        .call(Method::POST, &path, Some(&p.operator), None, Some("ack-1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["journal_id"], id);
    assert_eq!(again["repeat"], true);
    // The same key for another request is a conflict, not a second entry.
    let other = encode(&raise_alarm(&p, "PTL-3").await);
    let (status, conflict, _) = p
        .api
        .call(
            Method::POST,
            &format!("/api/v1/alarms/{other}/acknowledge"),
            Some(&p.operator),
            None,
            Some("ack-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["journal_id"], id);
    let keyed: Vec<_> = api_entries(&p.store, 0)
        .await
        .into_iter()
        .filter(|e| e.origin.idempotency_key.as_deref() == Some("ack-1"))
        .collect();
    assert_eq!(keyed.len(), 1, "{keyed:?}");
    // Acknowledging it again without a key: the core refuses (journaled as rejected), 422.
    let (status, twice, _) = p
        .api
        .call(Method::POST, &path, Some(&p.operator), None, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{twice}");
    assert!(twice["journal_id"].as_i64().unwrap() > id, "{twice}");
    p.takt.stop().await;
}

#[tokio::test]
async fn bad_bodies_name_the_field_and_journal_nothing() {
    let p = plant().await;
    let alarm = encode(&raise_alarm(&p, "PTL-4").await);
    let shelve = format!("/api/v1/alarms/{alarm}/shelve");
    let before = last_id(&p.store).await;
    let table: Vec<(&str, Option<Value>, StatusCode, Option<&str>)> = vec![
        ("no body", None, StatusCode::BAD_REQUEST, None),
        ("a list", Some(json!([1])), StatusCode::BAD_REQUEST, None),
        (
            "no until",
            Some(json!({"reason": "r"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("until"),
        ),
        (
            "until not a time",
            Some(json!({"until": "soon", "reason": "r"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("until"),
        ),
        (
            "until past",
            Some(json!({"until": "2001-01-01T00:00:00Z", "reason": "r"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("until"),
        ),
        (
            "blank reason",
            Some(json!({"until": "2099-01-01T00:00:00Z", "reason": "  "})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("reason"),
        ),
        (
            "an unknown field",
            Some(json!({"until": "2099-01-01T00:00:00Z", "reason": "r", "by": "me"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("by"),
        ),
    ];
    for (what, body, expected, field) in table {
        let (status, answer, content_type) = p
            .api
            .call(Method::POST, &shelve, Some(&p.supervisor), body, None)
            .await;
        assert_eq!(status, expected, "{what}: {answer}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{what}"
        );
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{what}: {answer}");
        }
    }
    let (status, answer, _) = p
        .api
        .call(
            Method::POST,
            "/api/v1/alarms/device_offline%3Anowhere/acknowledge",
            Some(&p.operator),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let too_long = "k".repeat(300);
    let (status, answer, _) = p
        .api
        .call(
            Method::POST,
            &format!("/api/v1/alarms/{alarm}/acknowledge"),
            Some(&p.operator),
            None,
            Some(&too_long),
        )
        .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("Idempotency-Key")),
        "{answer}"
    );
    let (status, answer, _) = p
        .api
        .call(
            Method::GET,
            "/api/v1/calls?after=x",
            Some(&p.operator),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("after")),
        "{answer}"
    );
    let (status, answer, _) = p
        .api
        .call(
            Method::GET,
            "/api/v1/calls?limit=0",
            Some(&p.operator),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")),
        "{answer}"
    );
    assert!(
        api_entries(&p.store, before).await.is_empty(),
        "a bad request journaled something"
    );
    p.takt.stop().await;
}

#[tokio::test]
async fn a_revoked_token_stops_at_the_next_request_and_the_document_lists_every_route() {
    let p = plant().await;
    let (status, made, _) = p
        .api
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&p.admin),
            Some(json!({"label": "tablet", "tenant": "seatco"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert!(made.get("hash").is_none(), "{made}");
    let token = made["token"].as_str().unwrap();
    let (status, _, _) = p
        .api
        .call(Method::GET, "/api/v1/calls", Some(token), None, None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a tenant does not read the plant"
    );
    let (status, list, _) = p
        .api
        .call(Method::GET, "/api/v1/tokens", Some(&p.admin), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 6, "{list}");
    assert!(
        !list.to_string().contains(&token[14..]),
        "a listing shows a secret"
    );
    let id = made["id"].as_str().unwrap();
    let (status, _, _) = p
        .api
        .call(
            Method::POST,
            &format!("/api/v1/tokens/{id}/revoke"),
            Some(&p.admin),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = p
        .api
        .call(Method::GET, "/api/v1/calls", Some(token), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, doc, _) = p
        .api
        .call(Method::GET, "/api/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/alarms",
        "/api/v1/alarms/{id}/acknowledge",
        "/api/v1/alarms/{id}/shelve",
        "/api/v1/alarms/{id}/unshelve",
        "/api/v1/calls",
        "/api/v1/calls/{id}/resolve",
        "/api/v1/families/{family}/close-rack",
        "/api/v1/racks",
        "/api/v1/racks/{id}/shipped",
        "/api/v1/racks/{id}/delivered",
        "/api/v1/stations/{station}/reset",
        "/api/v1/tasks",
        "/api/v1/vehicles",
        "/api/v1/lines/{line}/resequence",
        "/api/v1/lines/{line}/cancel",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}/revoke",
        "/api/v1/events",
        "/api/v1/events/ws",
        "/api/v1/lines",
        "/api/v1/lines/{line}/coverage",
        "/api/v1/supplier/calls",
        "/api/v1/supplier/calls/{id}",
        "/api/v1/supplier/calls/{id}/acknowledge",
        "/api/v1/supplier/shipments",
        "/api/v1/supplier/shipments/{id}",
        "/api/v1/shipments",
        "/api/v1/supplier/shipments/{id}/eta",
        "/api/v1/shipments/{id}/arrived",
        "/api/v1/supplier/deljit",
        "/api/v1/forecast",
        "/api/v1/supplier/forecast",
        "/api/v1/supplier/kpis",
        "/api/v1/suppliers/{id}/kpis",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert_eq!(paths.len(), 34, "{:?}", paths.keys().collect::<Vec<_>>());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    p.takt.stop().await;
}

/// An open event stream, read message by message.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(api: &Api, token: &str, last_event_id: Option<i64>, after: Option<i64>) -> Self {
        let mut url = format!("{}/api/v1/events", api.base);
        if let Some(after) = after {
            url.push_str(&format!("?after={after}"));
        }
        let mut request = api.http.get(url).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next message with an id: (id, event, data). Keep-alive comments are skipped.
    async fn next(&mut self) -> (i64, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let message: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    message
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::trim)
                        .map(str::to_owned)
                };
                if let (Some(id), Some(event), Some(data)) =
                    (field("id:"), field("event:"), field("data:"))
                {
                    return (
                        id.parse().unwrap(),
                        event,
                        serde_json::from_str(&data).unwrap(),
                    );
                }
                assert!(
                    field("event:").as_deref() != Some("closed"),
                    "closed: {message}"
                );
                continue;
            }
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(20), self.response.chunk())
                    .await
                    .expect("an event within 20 s")
                    .unwrap()
                    .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// `n` alarm changes, each its own committed input.
async fn alarm_events(plant: &Plant, from: usize, n: usize) {
    for i in from..from + n {
        raise_alarm(plant, &format!("PTL-S{i}")).await;
    }
}

#[tokio::test]
async fn the_stream_resumes_by_id_and_matches_the_outbox_once_in_order() {
    let p = plant().await;
    alarm_events(&p, 0, 20).await;
    let mut seen: Vec<(i64, String, Value)> = Vec::new();
    let mut stream = Stream::open(&p.api, &p.operator, None, Some(0)).await;
    // The backlog, then live events as they commit.
    for _ in 0..20 {
        seen.push(stream.next().await);
    }
    alarm_events(&p, 20, 20).await;
    for _ in 0..10 {
        seen.push(stream.next().await);
    }
    // Cut: more events commit while the client is away; it resumes from its last id.
    drop(stream);
    alarm_events(&p, 40, 20).await;
    let last = seen.last().unwrap().0;
    let mut stream = Stream::open(&p.api, &p.operator, Some(last), None).await;
    let outbox: Vec<takt::api::events::EventView> = p
        .store
        .events_after(&takt::store::EventReader::Plant, 0, 10_000)
        .await
        .unwrap();
    let raised = outbox.iter().filter(|e| e.kind == "alarm_changed").count();
    assert_eq!(raised, 60, "one alarm_changed per raise");
    while seen.len() < outbox.len() {
        seen.push(stream.next().await);
    }
    let ids: Vec<i64> = seen.iter().map(|s| s.0).collect();
    let expected: Vec<i64> = outbox.iter().map(|e| e.id).collect();
    assert_eq!(ids, expected, "every event once, in order");
    for ((id, kind, data), row) in seen.iter().zip(&outbox) {
        assert_eq!(
            (kind.as_str(), &data["kind"]),
            (row.kind.as_str(), &json!(row.kind)),
            "{id}"
        );
        assert_eq!(
            data["payload"], row.payload,
            "event {id} differs from the outbox"
        );
    }
    // A tenant reads none of the plant's events: the store's read takes the tenant.
    let theirs: Vec<takt::api::events::EventView> = p
        .store
        .events_after(
            &takt::store::EventReader::Tenant("seatco".into()),
            0,
            10_000,
        )
        .await
        .unwrap();
    // Only the line's beat as this supplier sees it: none of the plant's alarms.
    assert!(
        theirs
            .iter()
            .all(|e| e.kind == "supplier_takt_status" && e.tenant.as_deref() == Some("seatco")),
        "{theirs:?}"
    );
    let _tenant_stream = Stream::open(&p.api, &p.tenant, None, Some(0)).await;
    let (status, answer, _) = p
        .api
        .call(
            Method::GET,
            "/api/v1/events?after=-1",
            Some(&p.operator),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("after"))
    );
    drop(stream);
    p.takt.stop().await;
}

/// Reads `count` events from the WebSocket stream with Python's `websockets` (an independent
/// client): each JSON line it printed, an event or how the server refused or closed.
async fn ws_follow(api: &Api, token: &str, after: i64, count: usize) -> Vec<Value> {
    let url = format!(
        "{}/api/v1/events/ws?after={after}",
        api.base.replacen("http://", "ws://", 1)
    );
    let python = tokio::task::spawn_blocking(takt_tests::venv_python)
        .await
        .unwrap();
    let script = takt_tests::repo_root().join("tests/interop/ws_follow.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args([url.as_str(), token, &count.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "ws_follow.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn the_websocket_sends_what_the_outbox_holds_and_a_pruned_cursor_is_answered_gone() {
    let p = plant().await;
    alarm_events(&p, 0, 30).await;
    let outbox: Vec<takt::api::events::EventView> = p
        .store
        .events_after(&takt::store::EventReader::Plant, 0, 10_000)
        .await
        .unwrap();
    let raised = outbox.iter().filter(|e| e.kind == "alarm_changed").count();
    assert_eq!(raised, 30, "one alarm_changed per raise");
    let as_json: Vec<Value> = outbox
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let n = as_json.len();
    // The whole backlog, then a resume from the middle: the same events as the outbox, once.
    assert_eq!(ws_follow(&p.api, &p.operator, 0, n).await, as_json);
    let middle = outbox[14].id;
    assert_eq!(
        ws_follow(&p.api, &p.operator, middle, n - 15).await,
        as_json[15..]
    );

    // Everything older than tomorrow goes, but the newest event, which marks where it stands.
    // (Read again: a takt status may have landed since, if the venv was being made.)
    let kept: Vec<takt::api::events::EventView> = p
        .store
        .events_after(&takt::store::EventReader::Plant, 0, 10_000)
        .await
        .unwrap();
    let tomorrow = chrono::Utc::now() + chrono::TimeDelta::days(1);
    let pruned = p.store.prune_events(tomorrow).await.unwrap();
    let newest = p.store.oldest_event_id().await.unwrap().unwrap();
    assert!(
        pruned as usize >= kept.len() - 1,
        "{pruned} of {}",
        kept.len()
    );
    assert!(newest >= kept[kept.len() - 1].id);
    for stream in ["/api/v1/events", "/api/v1/events/ws"] {
        let (status, answer, content_type) = p
            .api
            .call(
                Method::GET,
                &format!("{stream}?after=0"),
                Some(&p.operator),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::GONE, "{stream}: {answer}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(answer["oldest_event_id"], newest, "{answer}");
    }
    let refused = ws_follow(&p.api, &p.operator, 0, 1).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["refused"], 410, "{refused:?}");
    // From just before the oldest kept, nothing is missing: the stream goes on.
    let last = ws_follow(&p.api, &p.operator, newest - 1, 1).await;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["id"], newest, "{last:?}");
    p.takt.stop().await;
}

#[tokio::test]
async fn line_status_and_coverage_read_by_cursor() {
    let p = plant().await;
    let example = plant_only_config(p._dir.path());
    broadcast_vehicles(&p.takt.writer, &example.plant.config, 1, 5, None).await;
    let (status, lines, _) = p
        .api
        .call(Method::GET, "/api/v1/lines", Some(&p.yard), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    let items = lines["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{lines}");
    assert_eq!(
        (
            &items[0]["line"],
            &items[0]["running"],
            &items[0]["takt_ms"]
        ),
        (&json!("A1"), &json!(true), &json!(60_000))
    );

    // Page through the line's coverage two families at a time; the pages join up to the
    // whole list, by family, with what the store holds.
    let mut families = Vec::new();
    let mut path = "/api/v1/lines/A1/coverage?limit=2".to_owned();
    loop {
        let (status, page, _) = p
            .api
            .call(Method::GET, &path, Some(&p.operator), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["line"], "A1");
            assert!(item["minutes"].is_number(), "{item}");
            families.push(item["family"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/lines/A1/coverage?limit=2&after={next}"),
            None => break,
        }
    }
    let stored = p.store.dump_projections().await.unwrap()["coverage"].clone();
    let mut expected: Vec<String> = stored
        .iter()
        .map(|row| row["family"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert!(
        expected.len() >= 3,
        "coverage of several families: {expected:?}"
    );
    assert_eq!(families, expected);

    let (status, answer, _) = p
        .api
        .call(
            Method::GET,
            "/api/v1/lines/NOPE/coverage",
            Some(&p.operator),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

    // The line's heartbeat is on the stream from the first input on.
    let outbox: Vec<takt::api::events::EventView> = p
        .store
        .events_after(&takt::store::EventReader::Plant, 0, 10_000)
        .await
        .unwrap();
    let beat = outbox
        .iter()
        .find(|e| e.kind == "takt_status")
        .expect("a takt status in the outbox");
    assert_eq!(beat.payload["line"], "A1", "{:?}", beat.payload);
    p.takt.stop().await;
}
