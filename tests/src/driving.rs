//! Driving a controller without a plant: its configuration, tokens journaled before it starts,
//! and broadcasts handed to its journal writer as a line's PLC source hands them over.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use takt::api::auth::new_token;
use takt::config::Config;
use takt::runtime::writer::Handle;
use takt::runtime::{Journaled, Submitted};
use takt::store::Store;
use takt_core::identity::{IdentityInput, Role, Scope};
use takt_core::{Input, PlantConfig, RawRecord};

use crate::example_plant_only;
use takt_core::SequencingInput;

/// The example plant without plant connections, its data under `dir`.
///
/// # Panics
/// If the example no longer parses.
#[must_use]
pub fn plant_only_config(dir: &Path) -> Config {
    let mut cfg =
        takt::config::parse(&dir.join("plant.toml"), &example_plant_only()).expect("example");
    cfg.controller.data_dir = dir.join("data");
    cfg
}

/// Tokens journaled before the controller starts, as `takt token create` does: one per
/// `(scope, label)`, in order.
///
/// # Panics
/// If the store cannot be opened or the tokens not journaled.
pub async fn seed_tokens(cfg: &Config, grants: &[(Scope, &str)]) -> Vec<String> {
    let store = Store::open(cfg.controller.database().url())
        .await
        .expect("the controller's store");
    let (mut journaled, _) = Journaled::open(Arc::new(cfg.plant.clone()), store, 0)
        .await
        .expect("journal");
    let mut tokens = Vec::new();
    let mut batch = Vec::new();
    for (scope, label) in grants {
        let made = new_token(scope.clone(), label).expect("randomness");
        tokens.push(made.token);
        let input = Input::Identity(IdentityInput::IssueToken(made.grant));
        batch.push(Submitted::plant(chrono::Utc::now(), input));
    }
    journaled
        .apply_submitted(batch)
        .await
        .expect("tokens journaled");
    journaled.store().close().await;
    tokens
}

/// `n` operator tokens labelled `{label} 0`, `{label} 1`…, as many screens would hold.
///
/// # Panics
/// As [`seed_tokens`].
pub async fn seed_operator_tokens(cfg: &Config, label: &str, n: usize) -> Vec<String> {
    let labels: Vec<String> = (0..n).map(|i| format!("{label} {i}")).collect();
    let operator = Scope::Role {
        role: Role::Operator,
    };
    let grants: Vec<(Scope, &str)> = labels
        .iter()
        .map(|label| (operator.clone(), label.as_str()))
        .collect();
    seed_tokens(cfg, &grants).await
}

/// Vehicles `first..first + count` broadcast at every point of the plant's first line (model by
/// turns, every option's first value), queued without waiting for each commit as OPC UA sources
/// queue them, at `per_s` vehicles a second if given, else as fast as the writer takes them.
/// Returns once every one is durable, with the next vehicle's number.
///
/// # Panics
/// If the writer stops or refuses a broadcast.
pub async fn broadcast_vehicles(
    writer: &Handle,
    config: &PlantConfig,
    first: u64,
    count: u64,
    per_s: Option<u64>,
) -> u64 {
    let line = &config.lines[0];
    let options: Vec<String> = config
        .options
        .iter()
        .map(|(key, values)| format!("{key}={}", values[0]))
        .collect();
    let mut pace = per_s.map(|n| tokio::time::interval(Duration::from_micros(1_000_000 / n)));
    let mut pending = Vec::new();
    for v in first..first + count {
        if let Some(pace) = pace.as_mut() {
            pace.tick().await;
        }
        for point in &line.broadcast_points {
            let record = RawRecord {
                seq: (v % u64::from(line.modulus)) as u32,
                vin: format!("WBA{v:014}"),
                body: format!("B{v}"),
                model: config.models[(v % config.models.len() as u64) as usize]
                    .code
                    .clone(),
                options: options.clone(),
            };
            let input = Input::Sequencing(SequencingInput::Broadcast {
                line: line.id.clone(),
                point: point.id.clone(),
                record,
            });
            pending.push(
                writer
                    .enqueue(input)
                    .await
                    .expect("the writer takes inputs"),
            );
        }
    }
    for queued in pending {
        let applied = queued.durable().await.expect("journaled");
        assert!(!applied.outcome.is_rejected(), "{:?}", applied.outcome);
    }
    first + count
}

/// One request to the API as a client sends it: bearer token, JSON body, `Idempotency-Key`.
/// Answers the status, the body as text and the content type.
///
/// # Panics
/// If the request cannot be sent or its body read.
pub async fn api_request(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    token: Option<&str>,
    body: Option<serde_json::Value>,
    key: Option<&str>,
) -> (reqwest::StatusCode, String, Option<String>) {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("a body");
    (status, text, content_type)
}
