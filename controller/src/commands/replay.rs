//! `takt replay`: rebuild everything from the journal, the flight recorder's read-back.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use takt::runtime::replay::{ReplaySummary, replay_journal};
use takt::store::Store;

pub(crate) async fn replay(config_path: &Path, rewrite: bool) -> Result<(), ExitCode> {
    let cfg = super::load(config_path)?;
    check(cfg, rewrite).await.map_err(|e| super::fail(&e))
}

async fn check(cfg: takt::config::Config, rewrite: bool) -> anyhow::Result<()> {
    let database = cfg.controller.database();
    let url = database.url();
    let store = Store::open(url)
        .await
        .with_context(|| format!("opening the store at {url}"))?;
    let plant = Arc::new(cfg.plant);
    // Rebuild into a scratch SQLite store so the real one is only touched with --rewrite.
    let scratch_dir = tempfile::tempdir().context("creating a scratch directory")?;
    let scratch_url = format!(
        "sqlite://{}",
        scratch_dir.path().join("replay.db").display()
    );
    let scratch = Store::open(&scratch_url)
        .await
        .context("opening the scratch store")?;
    let summary = replay_journal(plant, &store, &scratch)
        .await
        .context("replaying the journal")?;
    print_summary(&summary);
    let stored = store
        .dump_projections()
        .await
        .context("reading the stored projections")?;
    let rebuilt = scratch
        .dump_projections()
        .await
        .context("reading the rebuilt projections")?;
    let differences = compare(&stored, &rebuilt);
    if differences.is_empty() {
        println!("projections: identical to the journal's replay");
    } else {
        println!(
            "projections: {} table(s) differ from the journal's replay:",
            differences.len()
        );
        for d in &differences {
            println!("  {d}");
        }
    }
    if rewrite {
        store
            .reset_projections()
            .await
            .context("clearing the stored projections")?;
        takt::runtime::replay::replay_journal(Arc::new(summary.config.clone()), &store, &store)
            .await
            .context("rewriting the projections")?;
        println!("projections rewritten from the journal");
    } else if !differences.is_empty() {
        println!("run again with --rewrite to replace them");
    }
    Ok(())
}

fn print_summary(s: &ReplaySummary) {
    println!(
        "journal: {} entries ({} rejected, {} ignored)",
        s.entries, s.rejected, s.ignored
    );
    if let (Some(first), Some(last)) = (s.first_at, s.last_at) {
        println!("  from {} to {}", first.to_rfc3339(), last.to_rfc3339());
    }
    for (kind, n) in &s.by_kind {
        println!("  {kind:<14} {n}");
    }
    for (point, seq) in &s.expected {
        println!("{point}: next expected {seq}");
    }
    println!(
        "live: {} vehicle(s), {} call(s), {} rack(s)",
        s.live_vehicles, s.live_calls, s.live_racks
    );
    println!("alarms needing attention: {}", s.alarms_open.len());
    for a in &s.alarms_open {
        println!("  {a}");
    }
}

fn compare(
    stored: &BTreeMap<String, Vec<serde_json::Value>>,
    rebuilt: &BTreeMap<String, Vec<serde_json::Value>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (table, rows) in rebuilt {
        let have = stored.get(table).map_or(&[][..], Vec::as_slice);
        if have != rows.as_slice() {
            let first = rows.iter().zip(have).position(|(a, b)| a != b);
            out.push(format!(
                "{table}: stored {} row(s), replay {} row(s){}",
                have.len(),
                rows.len(),
                first.map_or(String::new(), |i| format!(", first difference at row {i}"))
            ));
        }
    }
    out
}
