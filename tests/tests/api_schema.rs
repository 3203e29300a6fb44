//! schemathesis, an OpenAPI fuzzer nobody here wrote, against the API's own generated document:
//! valid and invalid requests for every operation, with real tokens, checking every answer
//! against the document (status codes, content types, bodies) and that nothing is a 5xx: once
//! with a supervisor's token over the plant's side, once with a supplier's over its own.
//! Bounded (examples per operation, a rate under the per-token limit) so CI stays short.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;

use takt::api::auth::new_token;
use takt::runtime::{Journaled, Submitted};
use takt::store::Store;
use takt_core::AlarmInput;
use takt_core::identity::{IdentityInput, Role, Scope};
use takt_core::{AlarmKind, Input};
use takt_tests::{InProcess, example_plant_only, repo_root, venv_python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg =
        takt::config::parse(&dir.path().join("plant.toml"), &example_plant_only()).unwrap();
    cfg.controller.data_dir = dir.path().join("data");
    // A supervisor: the widest plant role short of admin (an admin fuzzed at random would
    // mint tokens by the hundred and could revoke its own).
    let made = new_token(
        Scope::Role {
            role: Role::Supervisor,
        },
        "schemathesis",
    )
    .unwrap();
    // A supplier's token for its own side of the API.
    let supplier = new_token(
        Scope::Tenant {
            tenant: "seatco".into(),
        },
        "schemathesis supplier",
    )
    .unwrap();
    {
        let store = Store::open(cfg.controller.database().url()).await.unwrap();
        let (mut journaled, _) = Journaled::open(Arc::new(cfg.plant.clone()), store, 0)
            .await
            .unwrap();
        let now = chrono::Utc::now();
        let inputs = vec![
            Input::Identity(IdentityInput::IssueToken(made.grant)),
            Input::Identity(IdentityInput::IssueToken(supplier.grant)),
            Input::Alarms(AlarmInput::Condition {
                alarm: AlarmKind::DeviceOffline,
                subject: "PTL-1".into(),
                active: true,
                message: "no answer".into(),
            }),
        ];
        let batch = inputs
            .into_iter()
            .map(|i| Submitted::plant(now, i))
            .collect();
        journaled.apply_submitted(batch).await.unwrap();
        journaled.store().close().await;
    }
    let takt = InProcess::start(cfg).await;
    let base = format!("http://{}", takt.addr);
    let plant = schemathesis(
        &python,
        &base,
        &made.token,
        // The stream never ends by design; it has tests of its own.
        &["--exclude-path", "/api/v1/events"],
    )
    .await;
    assert!(
        !plant.contains("No operations") && plant.contains("/api/v1/alarms"),
        "schemathesis did not test the plant's API:\n{plant}"
    );
    let own = schemathesis(
        &python,
        &base,
        &supplier.token,
        &["--include-path-regex", "^/api/v1/supplier/"],
    )
    .await;
    assert!(
        own.contains("/api/v1/supplier/calls/{id}/acknowledge"),
        "schemathesis did not test the supplier's API:\n{own}"
    );
    takt.stop().await;
}

/// One bounded schemathesis run with `token`; its report, if it found nothing.
async fn schemathesis(python: &std::path::Path, base: &str, token: &str, only: &[&str]) -> String {
    let schemathesis = python.with_file_name("schemathesis");
    let mut args: Vec<String> = [
        "run",
        &format!("{base}/api/v1/openapi.json"),
        "--url",
        base,
        "--header",
        &format!("Authorization: Bearer {token}"),
        "--checks",
        "all",
        // A schema-valid id is almost never one the plant has (404), and a valid time may be
        // in the past (422): refusals the document lists, not bugs.
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "30",
        "--rate-limit",
        "40/s",
        "--seed",
        "7",
        "--workers",
        "1",
        "--no-color",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend(only.iter().map(ToString::to_string));
    let run = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(repo_root())
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "schemathesis found problems:\n{report}"
    );
    report
}
