//! The HTTP router without a socket (`oneshot`), on a real writer and store.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use takt::runtime::{Journaled, writer};
use takt::store::Store;
use takt_core::SequencingInput;
use takt_core::{Input, RawRecord};
use tower::ServiceExt;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn status_shows_the_plant_as_of_the_last_commit() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("core/tests/fixtures/small.toml");
    let cfg = takt::config::load(&fixture).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let (journaled, _) = Journaled::open(Arc::new(cfg.plant), store, 0)
        .await
        .unwrap();
    let (handle, task) = writer::spawn(journaled, 64);
    let app = takt::http::app(handle.clone(), Default::default());

    let (code, body) = get(&app, "/status").await;
    assert_eq!(code, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["journal_id"], 0);
    assert_eq!(
        json["lines"][0]["expected_seq"]["B1"],
        serde_json::Value::Null
    );

    let record = RawRecord {
        seq: 41,
        vin: "WVWZZZ1JZ00000041".into(),
        body: String::new(),
        model: "M1".into(),
        options: vec!["SEAT=LTHR".into(), "COLOR=RED".into()],
    };
    handle
        .submit(Input::Sequencing(SequencingInput::Broadcast {
            line: "L".into(),
            point: "B1".into(),
            record,
        }))
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&get(&app, "/status").await.1).unwrap();
    assert_eq!(json["plant"], "test plant");
    assert_eq!(json["journal_id"], 1);
    assert_eq!(json["lines"][0]["line"], "L");
    assert_eq!(json["lines"][0]["running"], true);
    assert_eq!(json["lines"][0]["expected_seq"]["B1"], 42);
    assert_eq!(json["live"]["vehicles"], 1);
    assert_eq!(
        json["open_tasks"][0]["kind"]["bin"], "A1",
        "the seat pick is lit: {json}"
    );
    let alarms: Vec<&str> = json["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        alarms,
        ["coverage_low", "coverage_low"],
        "nothing is in a rack yet"
    );

    assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, "ok".into()));
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/nope").await.0, StatusCode::NOT_FOUND);

    drop((app, handle));
    drop(task.await.unwrap());
}
