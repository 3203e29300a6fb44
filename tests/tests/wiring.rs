//! The controller wired to a plant over real sockets: sim-line's OPC UA line server feeds
//! broadcasts, sim-line's Modbus modules show the lights and take the presses, SQLite keeps the
//! journal. Broadcast → journal → core → pick light; confirm press → journal → put light;
//! a wrong press → red light and an alarm.

use std::sync::Arc;
use std::time::Duration;

use takt_core::PlantConfig;
use takt_core::model::{TaskKind, TaskStatus};
use takt_sim_line::player::Sim;
use takt_sim_line::scenario::{Event, Scenario};
use takt_sim_line::truth::Truth;
use takt_tests::{InProcess, eventually, example_config, floor, http_get, wired_example};

const WAIT: Duration = Duration::from_secs(20);
/// sim-line profile colour codes.
const GREEN: u16 = 1;
const BLUE: u16 = 2;
const RED: u16 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_lights_the_pick_and_presses_walk_the_task_through_the_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut floor = floor(dir.path());
    // Presses come from this test, not from simulated operators.
    floor.operators.clear();
    let example: PlantConfig = toml::from_str(&example_config()).expect("example plant");
    let sim = Sim::start(&floor, &example, "A1", 1.0, 7, Truth::in_memory())
        .await
        .expect("sim-line");
    let line = sim.opcua();
    let modules = sim.module("PTL-DOORS").expect("door module");
    let cfg = takt::config::parse(
        &dir.path().join("plant.toml"),
        &wired_example(&sim, dir.path()),
    )
    .expect("configuration");
    let plant = Arc::new(cfg.plant.clone());
    let records: Vec<_> = Scenario::parse("seed = 7\nvehicles = 3\nstart_seq = 500\n")
        .expect("scenario")
        .plan(&plant.config)
        .expect("plan")
        .into_iter()
        .filter_map(|step| match step.event {
            Event::Broadcast { point, record, .. } if point == "B1" => Some(record),
            _ => None,
        })
        .collect();

    let takt = InProcess::start(cfg).await;
    let handle = takt.writer.clone();

    line.broadcast("B1", records[0].clone());
    let station = plant
        .config
        .stations
        .iter()
        .find(|s| s.id == "PS-DOORS")
        .expect("station");
    let pick = eventually(WAIT, "a pick task at PS-DOORS", || {
        handle
            .status()
            .open_tasks
            .iter()
            .find(|t| t.station == "PS-DOORS" && t.status == TaskStatus::Open)
            .cloned()
    })
    .await;
    let TaskKind::Pick { bin } = &pick.kind else {
        panic!("first task is a pick: {pick:?}");
    };
    let position = station.bins.iter().position(|b| &b.id == bin).expect("bin") as u16;
    eventually(WAIT, "the pick light", || {
        (modules.panel().lamp(1, position).map(|l| l.colour) == Some(GREEN)).then_some(())
    })
    .await;
    // The acknowledgement and the light both follow the commit, on paths of their own (the
    // source's write to the PLC, the router's to the module): either may land first.
    eventually(WAIT, "the PLC's acknowledgement", || {
        line.acked("B1").map(|_| ())
    })
    .await;

    // A press on another bin: wrong pick, red light, alarm; the task stays.
    let wrong = (position + 1) % station.bins.len() as u16;
    modules
        .panel()
        .press(1, wrong, Duration::from_millis(60))
        .await;
    eventually(WAIT, "the wrong-pick alarm", || {
        handle
            .status()
            .alarms
            .iter()
            .any(|a| a.key.kind.name() == "wrong_pick")
            .then_some(())
    })
    .await;
    eventually(WAIT, "the red light", || {
        (modules.panel().lamp(1, wrong).map(|l| l.colour) == Some(RED)).then_some(())
    })
    .await;

    // The right press: the pick light goes out and the rack slot lights for the put.
    modules
        .panel()
        .press(1, position, Duration::from_millis(60))
        .await;
    let put = eventually(WAIT, "the put task", || {
        handle
            .status()
            .open_tasks
            .iter()
            .find(|t| t.station == "PS-DOORS" && matches!(t.kind, TaskKind::Put { .. }))
            .cloned()
    })
    .await;
    let TaskKind::Put { slot, .. } = put.kind else {
        unreachable!("matched a put")
    };
    let slot_position = 8 + slot as u16 - 1;
    eventually(WAIT, "the put light", || {
        (modules.panel().lamp(1, slot_position).map(|l| l.colour) == Some(BLUE)
            && modules.panel().lamp(1, position).map(|l| l.colour) == Some(0))
        .then_some(())
    })
    .await;

    // The App's own HTTP, as an operator reads it.
    let url = format!("http://{}/status", takt.addr);
    let status: serde_json::Value = serde_json::from_str(
        &tokio::task::spawn_blocking(move || http_get(&url))
            .await
            .expect("GET"),
    )
    .expect("status JSON");
    let connections = &status["connections"];
    assert_eq!(connections["A1/B1"]["connected"], true, "{connections}");
    assert_eq!(connections["PTL-DOORS"]["connected"], true, "{connections}");
    // A controlled stop leaves the lamps in the device's offline state (default: off), not
    // showing a put nobody will confirm.
    drop(handle);
    takt.stop().await;
    assert_eq!(
        modules.panel().lamp(1, slot_position).map(|l| l.colour),
        Some(0),
        "the put light went out at the stop"
    );
    sim.stop().await;
}

/// `takt probe` against sim-line: every configured node and register fits, reported in file
/// order with its line. Then the same file with a NodeId misspelt and a module's profile made
/// wider than the module: each mismatch is named at the line it is written on, exit code 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takt_probe_reports_each_node_against_its_layout_with_the_config_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let floor = floor(dir.path());
    let example: PlantConfig = toml::from_str(&example_config()).expect("example plant");
    let sim = Sim::start(&floor, &example, "A1", 1.0, 7, Truth::in_memory())
        .await
        .expect("sim-line");
    let text = wired_example(&sim, dir.path());
    let probe = |text: &str| {
        let path = dir.path().join("plant.toml");
        std::fs::write(&path, text).expect("config written");
        let binary = takt_tests::takt_binary();
        async move {
            let out = tokio::process::Command::new(binary)
                .args(["probe", "--config"])
                .arg(&path)
                .output()
                .await
                .expect("takt probe runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
    };

    let (code, report) = probe(&text).await;
    assert_eq!(code, Some(0), "{report}");
    let lines: Vec<&str> = report.lines().collect();
    let (summary, checks) = lines.split_last().expect("a report");
    assert!(summary.ends_with(", 0 mismatch(es)"), "{report}");
    // Two sources of 10 and 8 nodes (B2 has no line state); two devices of 1 and 2 units,
    // lamps and buttons each.
    assert_eq!(checks.len(), 10 + 8 + 2 * 3, "{report}");
    assert!(checks.iter().all(|l| l.ends_with(": ok")), "{report}");
    let line_no = |l: &str| -> usize {
        l.split(':')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("FILE:LINE")
    };
    let numbers: Vec<usize> = checks.iter().map(|l| line_no(l)).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] <= w[1]),
        "in file order: {report}"
    );
    let trigger_line = text
        .lines()
        .position(|l| l.starts_with("trigger = \"s=A1.B1.Counter\""))
        .expect("B1's trigger")
        + 1;
    assert!(
        checks.iter().any(|l| line_no(l) == trigger_line
            && l.contains("sources[0].layout.trigger: A1/B1 s=A1.B1.Counter: ")),
        "the trigger at line {trigger_line}: {report}"
    );

    let wrong = text
        .replace("vin = \"s=A1.B2.Vin\"", "vin = \"s=A1.B2.VIN\"")
        .replace(
            "{ unit = 1, profile = \"sim-line\", station = \"PS-DOORS\"",
            &format!(
                "{{ unit = 1, profile = \"{}\", station = \"PS-DOORS\"",
                dir.path().join("wide.toml").display()
            ),
        );
    let wide =
        std::fs::read_to_string(takt_tests::repo_root().join("plc-bridge/profiles/sim-line.toml"))
            .expect("sim-line profile")
            .replace("positions = 16", "positions = 20");
    std::fs::write(dir.path().join("wide.toml"), wide).expect("profile written");
    let (code, report) = probe(&wrong).await;
    assert_eq!(code, Some(1), "{report}");
    let mismatches: Vec<&str> = report.lines().filter(|l| l.contains("MISMATCH")).collect();
    let line_of = |needle: &str| {
        wrong
            .lines()
            .position(|l| l.contains(needle))
            .expect(needle)
            + 1
    };
    let vin_line = line_of("s=A1.B2.VIN");
    let unit_line = line_of("wide.toml");
    assert_eq!(
        mismatches.len(),
        3,
        "vin, the unit's lamps and buttons: {report}"
    );
    assert!(
        mismatches[0].contains(&format!(":{vin_line}: sources[1].layout.record.vin:"))
            && mismatches[0].contains("BadNodeIdUnknown"),
        "{report}"
    );
    for m in &mismatches[1..] {
        assert!(
            m.contains(&format!(":{unit_line}: devices[0].units[0].profile:")),
            "{report}"
        );
    }
    assert!(report.ends_with("3 mismatch(es)\n"), "{report}");
    sim.stop().await;
}
