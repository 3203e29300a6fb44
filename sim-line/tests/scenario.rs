//! The scenario planner against the example plant: deterministic, valid records, the requested
//! mix, and every fault where the scenario puts it.
#![allow(clippy::unwrap_used)]

use takt_core::{PlantConfig, Record};
use takt_sim_line::scenario::{Event, Scenario, Step};

fn plant() -> PlantConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/example.toml");
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn scenario(extra: &str) -> Scenario {
    Scenario::parse(&format!("seed = 7\nvehicles = 6\n{extra}")).unwrap()
}

/// (vehicle, seq) of every broadcast at B1, in publishing order.
fn at_b1(steps: &[Step]) -> Vec<(u32, u32)> {
    steps
        .iter()
        .filter_map(|s| match &s.event {
            Event::Broadcast {
                point,
                vehicle,
                record,
            } if point == "B1" => Some((*vehicle, record.seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_line() {
    let plant = plant();
    let a = scenario("").plan(&plant).unwrap();
    assert_eq!(a, scenario("").plan(&plant).unwrap());
    let other = Scenario::parse("seed = 8\nvehicles = 6")
        .unwrap()
        .plan(&plant)
        .unwrap();
    assert_ne!(a, other);
}

#[test]
fn every_record_is_valid_for_the_plant() {
    let plant = plant();
    let index = plant.clone().index().unwrap();
    // Verify check digits too, as a North-American line would.
    let mut line = index.line("A1").unwrap().clone();
    line.vin_check_digit = true;
    let steps = Scenario::parse("seed = 1\nvehicles = 500")
        .unwrap()
        .plan(&plant)
        .unwrap();
    let mut broadcasts = 0;
    for s in &steps {
        if let Event::Broadcast { record, .. } = &s.event {
            Record::validate(record, &line, &index).unwrap();
            broadcasts += 1;
        }
    }
    assert_eq!(broadcasts, 1000, "500 vehicles at two broadcast points");
}

#[test]
fn the_model_mix_follows_the_weights() {
    let steps = Scenario::parse(
        "seed = 3\nvehicles = 4000\nmodels = { SUV5 = 0.5, SED4 = 0.3, EST5 = 0.2 }",
    )
    .unwrap()
    .plan(&plant())
    .unwrap();
    let share = |model: &str| {
        let n = steps
            .iter()
            .filter(|s| matches!(&s.event, Event::Broadcast { point, record, .. } if point == "B1" && record.model == model))
            .count();
        n as f64 / 4000.0
    };
    for (model, weight) in [("SUV5", 0.5), ("SED4", 0.3), ("EST5", 0.2)] {
        assert!(
            (share(model) - weight).abs() < 0.03,
            "{model}: {}",
            share(model)
        );
    }
}

#[test]
fn numbers_wrap_at_the_modulus_and_late_points_lag() {
    let steps = scenario("start_seq = 9998\npoint_offsets = { B2 = 20 }")
        .plan(&plant())
        .unwrap();
    assert_eq!(
        at_b1(&steps).iter().map(|x| x.1).collect::<Vec<_>>(),
        [9998, 9999, 0, 1, 2, 3]
    );
    let b2_first = steps
        .iter()
        .find(|s| matches!(&s.event, Event::Broadcast { point, vehicle: 0, .. } if point == "B2"))
        .unwrap();
    assert_eq!(b2_first.at_ms, 20 * 60_000);
}

#[test]
fn faults_change_what_b1_publishes() {
    // (fault after vehicle 1, vehicles in publishing order at B1)
    let cases: [(&str, &[u32]); 6] = [
        (
            "{ after_vehicle = 1, fault = \"gap\", count = 2 }",
            &[0, 1, 4, 2, 3, 5],
        ),
        (
            "{ after_vehicle = 1, fault = \"skip\", count = 1 }",
            &[0, 1, 3, 4, 5],
        ),
        (
            "{ after_vehicle = 1, fault = \"duplicate\" }",
            &[0, 1, 1, 2, 3, 4, 5],
        ),
        (
            "{ after_vehicle = 1, fault = \"correction\" }",
            &[0, 1, 1, 2, 3, 4, 5],
        ),
        (
            "{ after_vehicle = 1, fault = \"stop_broadcasting\", duration_ms = 150000 }",
            &[0, 1, 2, 3, 4, 5],
        ),
        (
            "{ after_vehicle = 1, fault = \"restart_server\" }",
            &[0, 1, 2, 3, 4, 5],
        ),
    ];
    for (fault, order) in cases {
        let steps = scenario(&format!("faults = [{fault}]"))
            .plan(&plant())
            .unwrap();
        assert_eq!(
            at_b1(&steps).iter().map(|x| x.0).collect::<Vec<_>>(),
            order,
            "{fault}"
        );
        assert_eq!(
            steps
                .iter()
                .filter(|s| matches!(s.event, Event::Fault(_)))
                .count(),
            1,
            "{fault}"
        );
    }
    // The correction repeats vehicle 1's number with a different payload; the duplicate does not.
    let records = |fault: &str| {
        let steps = scenario(&format!(
            "faults = [{{ after_vehicle = 1, fault = \"{fault}\" }}]"
        ))
        .plan(&plant())
        .unwrap();
        steps
            .into_iter()
            .filter_map(|s| match s.event {
                Event::Broadcast {
                    point,
                    vehicle: 1,
                    record,
                } if point == "B1" => Some(record),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let dup = records("duplicate");
    assert_eq!(dup[0], dup[1]);
    let cor = records("correction");
    assert_eq!(cor[0].seq, cor[1].seq);
    assert_ne!(cor[0].options, cor[1].options);
    // Stopped broadcasting: vehicles 2 and 3 catch up when vehicle 4 is broadcast.
    let steps = scenario(
        "faults = [{ after_vehicle = 1, fault = \"stop_broadcasting\", duration_ms = 150000 }]",
    )
    .plan(&plant())
    .unwrap();
    let time_of = |v: u32| {
        steps
            .iter()
            .find(|s| matches!(&s.event, Event::Broadcast { point, vehicle, .. } if point == "B1" && *vehicle == v))
            .unwrap()
            .at_ms
    };
    assert_eq!(
        (time_of(2), time_of(3), time_of(4)),
        (240_000, 240_000, 240_000)
    );
}

#[test]
fn a_line_stop_pushes_every_later_vehicle_out() {
    let steps =
        scenario("stops = [{ after_vehicle = 2, duration_ms = 600000, reason = \"andon\" }]")
            .plan(&plant())
            .unwrap();
    let events: Vec<_> = steps
        .iter()
        .filter(|s| matches!(s.event, Event::LineStopped { .. } | Event::LineRunning))
        .map(|s| s.at_ms)
        .collect();
    assert_eq!(events, [120_000, 720_000]);
    let v3 = steps
        .iter()
        .find(|s| matches!(&s.event, Event::Broadcast { point, vehicle: 3, .. } if point == "B1"))
        .unwrap();
    assert_eq!(v3.at_ms, 3 * 60_000 + 600_000);
}

#[test]
fn bad_scenarios_are_refused_with_the_field() {
    // (extra lines, field named in the error)
    let cases = [
        ("models = { XX9 = 1.0 }", "models.XX9"),
        ("models = { SUV5 = 0.0 }", "models"),
        ("models = { SUV5 = -1.0 }", "models"),
        (
            "options = { SEAT = { VELVET = 1.0 } }",
            "options.SEAT.VELVET",
        ),
        ("options = { ROOF = { GLASS = 1.0 } }", "options.ROOF"),
        (
            "faults = [{ after_vehicle = 6, fault = \"duplicate\" }]",
            "faults[0].after_vehicle",
        ),
        ("acceleration = 0.0", "acceleration"),
        ("start_seq = 10000", "start_seq"),
        ("line = \"Z9\"", "line"),
        ("point_offsets = { B7 = 3 }", "point_offsets.B7"),
    ];
    for (extra, field) in cases {
        let e = scenario(extra).plan(&plant()).unwrap_err();
        assert_eq!(e.field, field, "{extra}: {e}");
    }
    assert!(Scenario::parse("seed = 1").is_err(), "vehicles is required");
    assert!(
        Scenario::parse("seed = 1\nvehicles = 2\ncolour = 3").is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn the_demo_scenario_plans_on_the_example_plant() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/demo.toml");
    let steps = Scenario::parse(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .plan(&plant())
        .unwrap();
    let vehicles: std::collections::BTreeSet<u32> =
        at_b1(&steps).into_iter().map(|x| x.0).collect();
    assert_eq!(
        vehicles.len(),
        300,
        "every vehicle is published at least once"
    );
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s.event, Event::Fault(_)))
            .count(),
        10
    );
}

#[test]
fn a_fault_can_come_mid_takt() {
    let plant = plant();
    let takt = plant.lines[0].takt_ms;
    let steps = scenario(
        "faults = [{ after_vehicle = 2, after_ms = 20000, fault = \"restart_device\", device = \"PTL-DOORS\" }]",
    )
    .plan(&plant)
    .unwrap();
    let fault_at: Vec<u64> = steps
        .iter()
        .filter(|s| matches!(s.event, Event::Fault(_)))
        .map(|s| s.at_ms)
        .collect();
    assert_eq!(fault_at, vec![2 * takt + 20_000]);
    // Between vehicle 2's broadcast and vehicle 3's.
    let position = steps
        .iter()
        .position(|s| matches!(s.event, Event::Fault(_)))
        .unwrap();
    assert!(matches!(
        &steps[position - 1].event,
        Event::Broadcast { vehicle: 2, .. }
    ));
}
