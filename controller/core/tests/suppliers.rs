//! The suppliers context through the core: whose events are whose, acknowledgements, and the
//! alarm for calls nobody acknowledged.
#![allow(clippy::unwrap_used)]

mod plant;

use chrono::TimeDelta;
use plant::{Plant, std_rec};
use takt_core::io::{Change, Outcome, StreamEvent};
use takt_core::model::CallId;
use takt_core::suppliers::{AckStage, SupplierInput};
use takt_core::{AlarmKind, AlarmState, Input};

fn ack(p: &mut Plant, tenant: &str, call: CallId, stage: AckStage) -> Outcome {
    p.input(Input::Suppliers(SupplierInput::AcknowledgeCall {
        tenant: tenant.into(),
        call,
        stage,
    }))
}

fn bumper_call(p: &Plant, seq: u32) -> CallId {
    p.core
        .calls()
        .find(|c| c.family == "bumper" && c.seq.value() == seq)
        .map(|c| c.id)
        .expect("a bumper call")
}

/// (event name, tenant) of every outbox row committed so far.
fn outbox(p: &Plant) -> Vec<(&'static str, Option<String>)> {
    p.changes
        .iter()
        .filter_map(|c| match c {
            Change::Event(e) => Some((e.event.name(), e.tenant.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_suppliers_events_carry_its_tenant_and_the_plants_carry_none() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    let rows = outbox(&p);
    let bumpco = Some("bumpco".to_owned());
    assert!(rows.contains(&("call_created", bumpco.clone())), "{rows:?}");
    assert!(
        rows.contains(&("call_created", None)),
        "the seat call: {rows:?}"
    );
    for (name, tenant) in &rows {
        match *name {
            "takt_status" | "alarm_changed" | "line_state" => assert_eq!(tenant, &None, "{name}"),
            _ => {}
        }
    }
    let bumper = p.core.calls().find(|c| c.family == "bumper").unwrap();
    assert_eq!(bumper.supplier.as_deref(), Some("bumpco"));
    let seat = p.core.calls().find(|c| c.family == "seat").unwrap();
    assert_eq!(seat.supplier, None);
    // Three bumpers fill a rack: its close and the coverage are the supplier's too.
    p.bc(std_rec(2, 2));
    p.bc(std_rec(3, 3));
    let rows = outbox(&p);
    assert!(rows.contains(&("rack_closed", bumpco.clone())), "{rows:?}");
    assert!(rows.contains(&("coverage", bumpco)), "{rows:?}");
}

#[test]
fn a_supplier_acknowledges_its_own_calls_once_and_nobody_elses() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    let call = bumper_call(&p, 1);
    let seat = p.core.calls().find(|c| c.family == "seat").unwrap().id;
    // Another tenant, the plant's own call, a call that does not exist: the same refusal.
    for (tenant, id) in [("trimco", call), ("bumpco", seat), ("bumpco", CallId(999))] {
        let out = ack(&mut p, tenant, id, AckStage::Received);
        assert!(out.is_rejected(), "{tenant} {id}: {out:?}");
    }
    p.at(5);
    assert_eq!(
        ack(&mut p, "bumpco", call, AckStage::Received),
        Outcome::Applied
    );
    let received = p.now;
    assert!(matches!(
        ack(&mut p, "bumpco", call, AckStage::Received),
        Outcome::Ignored(_)
    ));
    p.at(60);
    assert_eq!(
        ack(&mut p, "bumpco", call, AckStage::Built),
        Outcome::Applied
    );
    let c = p.core.calls().find(|c| c.id == call).unwrap();
    assert_eq!((c.received_at, c.built_at), (Some(received), Some(p.now)));
    let changed = p.drain().into_iter().filter(
        |a| matches!(a, takt_core::Action::Stream(StreamEvent::CallChanged(c)) if c.id == call),
    );
    assert_eq!(changed.count(), 2, "one call_changed per acknowledgement");
}

#[test]
fn calls_left_unacknowledged_raise_the_suppliers_alarm_until_each_is_settled() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.at(10);
    p.bc(std_rec(2, 2));
    let (first, second) = (bumper_call(&p, 1), bumper_call(&p, 2));
    // Built straight away: received too, so it never waits.
    p.at(10);
    assert_eq!(
        ack(&mut p, "bumpco", first, AckStage::Built),
        Outcome::Applied
    );
    let due = p.now + TimeDelta::seconds(80);
    assert!(
        p.core.poll_timeout().is_some_and(|t| t <= due),
        "the core asks for a tick by the time the second call's receipt is due"
    );
    p.at(79);
    p.tick();
    assert_eq!(
        p.alarm_state(AlarmKind::CallUnacknowledged, "bumpco"),
        AlarmState::Normal
    );
    p.at(1);
    p.tick();
    assert_eq!(
        p.alarm_state(AlarmKind::CallUnacknowledged, "bumpco"),
        AlarmState::ActiveUnacknowledged
    );
    let message = &p
        .core
        .alarm(AlarmKind::CallUnacknowledged, "bumpco")
        .unwrap()
        .message;
    assert!(message.contains(&format!("call {second}")), "{message}");
    // A third call overdue too; acknowledging one of the two keeps the alarm, the other clears it.
    p.bc(std_rec(3, 3));
    let third = bumper_call(&p, 3);
    p.at(90);
    p.tick();
    assert_eq!(
        ack(&mut p, "bumpco", second, AckStage::Received),
        Outcome::Applied
    );
    assert_eq!(
        p.alarm_state(AlarmKind::CallUnacknowledged, "bumpco"),
        AlarmState::ActiveUnacknowledged
    );
    // The third leaves the sequence unacknowledged: nothing is waiting any more.
    let vin = p
        .core
        .calls()
        .find(|c| c.id == third)
        .unwrap()
        .vin
        .to_string();
    let out = p.input(Input::Sequencing(takt_core::SequencingInput::Cancel {
        line: "L".into(),
        vin,
    }));
    assert_eq!(out, Outcome::Applied);
    assert_eq!(
        p.alarm_state(AlarmKind::CallUnacknowledged, "bumpco"),
        AlarmState::ClearedUnacknowledged
    );
}

#[test]
fn each_supplier_hears_the_line_beat_with_its_own_families() {
    let mut p = Plant::new();
    for n in 1..=6 {
        p.bc(std_rec(n, n));
    }
    p.drain();
    p.at(60);
    p.tick();
    let rows = outbox(&p);
    assert!(rows.contains(&("supplier_takt_status", Some("bumpco".to_owned()))));
    let statuses: Vec<_> = p
        .drain()
        .into_iter()
        .filter_map(|a| match a {
            takt_core::Action::Stream(StreamEvent::SupplierTaktStatus(s)) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(statuses.len(), 1, "one supplier builds for line L");
    let s = &statuses[0];
    assert_eq!(
        (s.supplier.as_str(), s.line.as_str(), s.running),
        ("bumpco", "L", true)
    );
    let families: Vec<&str> = s.families.iter().map(|f| f.family.as_str()).collect();
    assert_eq!(families, ["bumper"], "its own families only");
    let bumper = &s.families[0];
    assert_eq!(bumper.install_station, "S-BUMP");
    // Six broadcast, the bumper station 4 positions on: the third vehicle reaches it next.
    assert_eq!(bumper.next_seq, Some(3));
    let earliest = p
        .core
        .calls()
        .filter(|c| c.family == "bumper")
        .map(|c| c.due_at)
        .min();
    assert_eq!(bumper.next_call_due, earliest);
    let cov = p.core.coverage("bumper").expect("measured");
    assert_eq!(
        (bumper.coverage_vehicles, bumper.coverage_minutes),
        (cov.vehicles, cov.minutes)
    );
    // A stop is heard at once, with its reason.
    p.input(Input::Sequencing(takt_core::SequencingInput::LineState {
        line: "L".into(),
        running: false,
        reason: Some("andon".into()),
    }));
    let stopped = p.drain().into_iter().find_map(|a| match a {
        takt_core::Action::Stream(StreamEvent::SupplierTaktStatus(s)) => Some(s),
        _ => None,
    });
    let stopped = stopped.expect("a status at the stop");
    assert_eq!(
        (stopped.running, stopped.reason.as_deref()),
        (false, Some("andon"))
    );
}

#[test]
fn a_plan_becomes_each_suppliers_demand_per_part_and_hour_and_a_new_plan_replaces_it() {
    use takt_core::forecast::{Plan, PlannedVehicle};
    let mut p = Plant::new();
    let at = |h: u32, m: u32| {
        use chrono::TimeZone;
        chrono::Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
    };
    let vehicle = |t, model: &str, colour: &str| PlannedVehicle {
        planned_at: t,
        model: model.into(),
        options: vec!["SEAT=LTHR".into(), format!("COLOR={colour}")],
    };
    let plan = |vehicles| {
        Input::Suppliers(SupplierInput::Plan(Plan {
            line: "L".into(),
            vehicles,
        }))
    };
    // The bumper is needed 4 takts (4 min) after the broadcast; M2 takes none.
    let first = plan(vec![
        vehicle(at(6, 0), "M1", "RED"),
        vehicle(at(6, 1), "M1", "RED"),
        vehicle(at(6, 2), "M1", "BLUE"),
        vehicle(at(6, 56), "M1", "RED"),
        vehicle(at(6, 57), "M2", "RED"),
    ]);
    assert_eq!(p.input(first), Outcome::Applied);
    let demand = |p: &Plant| -> Vec<(u32, String, u32, Option<String>)> {
        p.changes
            .iter()
            .filter_map(|c| match c {
                Change::Event(e) => match &e.event {
                    StreamEvent::Forecast(f) => Some((e.tenant.clone(), f.demand.clone())),
                    _ => None,
                },
                _ => None,
            })
            .flat_map(|(tenant, rows)| {
                rows.into_iter().map(move |d| {
                    use chrono::Timelike;
                    (d.hour.hour(), d.part, d.quantity, tenant.clone())
                })
            })
            .collect()
    };
    let bumpco = Some("bumpco".to_owned());
    assert_eq!(
        demand(&p),
        [
            (6, "BMP-B".to_owned(), 1, bumpco.clone()),
            (6, "BMP-R".to_owned(), 2, bumpco.clone()),
            (7, "BMP-R".to_owned(), 1, bumpco.clone()),
        ],
        "needed at 06:04, 06:05, 06:06 and 07:00; the in-plant seat is nobody's demand"
    );
    p.drain();
    // The MES's next view: one red bumper in the first hour, nothing after.
    let second = plan(vec![vehicle(at(6, 10), "M1", "RED")]);
    assert_eq!(p.input(second), Outcome::Applied);
    assert_eq!(
        demand(&p),
        [
            (6, "BMP-B".to_owned(), 0, bumpco.clone()),
            (6, "BMP-R".to_owned(), 1, bumpco.clone()),
            (7, "BMP-R".to_owned(), 0, bumpco),
        ]
    );
    // A bad plan names its field and changes nothing.
    let before = p.core.state().clone();
    for (bad, field) in [
        (vec![vehicle(at(6, 0), "M9", "RED")], "vehicles[0].model"),
        (
            vec![vehicle(at(6, 0), "M1", "GREEN")],
            "vehicles[0].options[1]",
        ),
        (
            vec![
                vehicle(at(6, 0), "M1", "RED"),
                vehicle(at(6, 0) + TimeDelta::days(15), "M1", "RED"),
            ],
            "vehicles",
        ),
    ] {
        let out = p.input(plan(bad));
        assert_eq!(out.field(), Some(field), "{out:?}");
    }
    let wrong_line = Input::Suppliers(SupplierInput::Plan(Plan {
        line: "Z".into(),
        vehicles: Vec::new(),
    }));
    assert_eq!(p.input(wrong_line).field(), Some("line"));
    assert_eq!(p.core.state(), &before);
}
