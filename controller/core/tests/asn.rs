//! Suppliers' ASNs through the core: every kind of wrong refused whole, naming its field, with
//! the state untouched; a right one ships its racks and calls, and the shipment leaves the live
//! state when its racks reach the line.
#![allow(clippy::unwrap_used)]

mod plant;

use chrono::{DateTime, TimeDelta, Utc};
use plant::{Plant, std_rec};
use takt_core::io::{Change, Outcome, StreamEvent};
use takt_core::model::{CallId, CallStatus, RackStatus};
use takt_core::suppliers::{Asn, AsnRack, AsnSlot, ShipmentStatus, SkippedCall, SupplierInput};
use takt_core::{AlarmKind, Input, PickingInput};

/// Seven M1 vehicles: bumper racks 1 (seq 1–3) and 2 (seq 4–6) closed, rack 3 open with one;
/// the bumper station 20 positions on, so none is installed yet.
fn loaded() -> Plant {
    let mut p = Plant::on(plant::config_with(|cfg| {
        cfg.lines[0].install_stations[1].offset_positions = 20;
    }));
    for n in 1..=7 {
        p.bc(std_rec(n, n));
    }
    p
}

fn slots_of(p: &Plant, rack: &str) -> Vec<AsnSlot> {
    let r = p.core.racks().find(|r| r.id == rack).unwrap();
    r.slots
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            c.map(|call| AsnSlot {
                slot: i as u32 + 1,
                call,
            })
        })
        .collect()
}

fn asn(p: &Plant, racks: &[&str]) -> Asn {
    Asn {
        tenant: "bumpco".into(),
        number: "ASN-0001".into(),
        carrier: "haul".into(),
        trailer: "L-TR 442".into(),
        eta: p.now + TimeDelta::minutes(40),
        racks: racks
            .iter()
            .map(|r| AsnRack {
                rack: (*r).to_owned(),
                slots: slots_of(p, r),
            })
            .collect(),
        skipped: Vec::new(),
    }
}

fn ship(p: &mut Plant, asn: Asn) -> Outcome {
    p.input(Input::Suppliers(SupplierInput::Ship(asn)))
}

const R1: &str = "bumper-000001";
const R2: &str = "bumper-000002";
const R3: &str = "bumper-000003";

#[test]
fn every_kind_of_wrong_asn_is_refused_whole_naming_its_field() {
    let p0 = loaded();
    let now: DateTime<Utc> = p0.now;
    let first_of = |p: &Plant, r: &str| slots_of(p, r)[0].call;
    type Edit = Box<dyn Fn(&Plant, &mut Asn)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "no number",
            Box::new(|_, a| a.number = " ".into()),
            "number",
        ),
        (
            "a carrier nobody configured",
            Box::new(|_, a| a.carrier = "ghost".into()),
            "carrier",
        ),
        (
            "no trailer",
            Box::new(|_, a| a.trailer = String::new()),
            "trailer",
        ),
        (
            "an ETA in the past",
            Box::new(move |_, a| a.eta = now - TimeDelta::minutes(1)),
            "eta",
        ),
        ("no racks", Box::new(|_, a| a.racks.clear()), "racks"),
        (
            "a rack the plant does not have",
            Box::new(|_, a| a.racks[0].rack = "bumper-999999".into()),
            "racks[0].rack",
        ),
        (
            "another supplier's ASN for these racks",
            Box::new(|_, a| a.tenant = "trimco".into()),
            "racks[0].rack",
        ),
        (
            "a rack twice",
            Box::new(|_, a| a.racks.push(a.racks[0].clone())),
            "racks[1].rack",
        ),
        (
            "a rack still open",
            Box::new(|p, a| {
                a.racks = vec![AsnRack {
                    rack: R3.into(),
                    slots: slots_of(p, R3),
                }];
            }),
            "racks[0].rack",
        ),
        (
            "the second rack before the first",
            Box::new(|p, a| {
                a.racks = vec![AsnRack {
                    rack: R2.into(),
                    slots: slots_of(p, R2),
                }];
            }),
            "racks[0].rack",
        ),
        (
            "a slot the rack does not have",
            Box::new(|_, a| a.racks[0].slots[0].slot = 4),
            "racks[0].slots[0].slot",
        ),
        (
            "slot zero",
            Box::new(|_, a| a.racks[0].slots[0].slot = 0),
            "racks[0].slots[0].slot",
        ),
        (
            "a slot twice",
            Box::new(|_, a| a.racks[0].slots[1].slot = a.racks[0].slots[0].slot),
            "racks[0].slots[1].slot",
        ),
        (
            "a call in the wrong slot (two swapped)",
            Box::new(|_, a| {
                let (c0, c1) = (a.racks[0].slots[0].call, a.racks[0].slots[1].call);
                a.racks[0].slots[0].call = c1;
                a.racks[0].slots[1].call = c0;
            }),
            "racks[0].slots[0].call",
        ),
        (
            "a call the plant never made",
            Box::new(|_, a| a.racks[0].slots[2].call = CallId(9_999)),
            "racks[0].slots[2].call",
        ),
        (
            "a call skipped without saying so",
            Box::new(|_, a| {
                a.racks[0].slots.pop();
            }),
            "racks[0].slots",
        ),
        (
            "a skip without a reason",
            Box::new(|_, a| {
                let last = a.racks[0].slots.pop().unwrap();
                a.skipped.push(SkippedCall {
                    call: last.call,
                    reason: "  ".into(),
                });
            }),
            "skipped[0].reason",
        ),
        (
            "a skip of a call on no rack of the ASN",
            Box::new(move |p, a| {
                a.skipped.push(SkippedCall {
                    call: first_of(p, R2),
                    reason: "paint defect".into(),
                });
            }),
            "skipped[0].call",
        ),
        (
            "a call both loaded and skipped",
            Box::new(|_, a| {
                a.skipped.push(SkippedCall {
                    call: a.racks[0].slots[0].call,
                    reason: "paint defect".into(),
                });
            }),
            "skipped[0].call",
        ),
    ];
    for (name, edit, field) in &cases {
        let mut p = loaded();
        let before = p.core.state().clone();
        let mut bad = asn(&p, &[R1]);
        edit(&p, &mut bad);
        p.drain();
        let out = ship(&mut p, bad);
        assert!(out.is_rejected(), "{name}: {out:?}");
        assert_eq!(out.field(), Some(*field), "{name}: {out:?}");
        assert_eq!(p.core.state(), &before, "{name} changed the state");
        assert!(p.drain().is_empty(), "{name} released actions");
    }
    assert!(cases.len() >= 10);
}

#[test]
fn a_right_asn_ships_its_racks_and_the_shipment_ends_when_they_reach_the_line() {
    let mut p = loaded();
    let mut good = asn(&p, &[R1, R2]);
    // One part could not be built: shipped without it, with why.
    let short = good.racks[1].slots.remove(1);
    good.skipped.push(SkippedCall {
        call: short.call,
        reason: "paint defect, re-spray".into(),
    });
    p.drain();
    assert_eq!(ship(&mut p, good.clone()), Outcome::Applied);
    assert_eq!(p.rack_status(R1), Some(RackStatus::Shipped));
    assert_eq!(p.rack_status(R2), Some(RackStatus::Shipped));
    let shipped: Vec<CallId> = good
        .racks
        .iter()
        .flat_map(|r| r.slots.iter().map(|s| s.call))
        .collect();
    for call in &shipped {
        let c = p.core.calls().find(|c| c.id == *call).unwrap();
        assert_eq!(c.status, CallStatus::Shipped, "call {call}");
        assert!(c.received_at.is_some(), "loaded is received");
    }
    let left = p.core.calls().find(|c| c.id == short.call).unwrap();
    assert_eq!(
        left.status,
        CallStatus::Created,
        "the skipped call is not on the trailer"
    );
    assert!(p.core.alarm(AlarmKind::ShortShipped, "bumper").is_some());
    let shipments: Vec<_> = p
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Event(e) => match &e.event {
                StreamEvent::Shipment(s) => Some((e.tenant.clone(), s.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(shipments.len(), 1);
    let (tenant, shipment) = &shipments[0];
    assert_eq!(tenant.as_deref(), Some("bumpco"));
    assert_eq!(shipment.racks, [R1, R2]);
    assert_eq!(shipment.status, ShipmentStatus::InTransit);

    // The same number again is refused while that shipment is in the plant's hands.
    let mut again = asn(&p, &[]);
    again.racks = good.racks.clone();
    assert_eq!(ship(&mut p, again).field(), Some("number"));

    // Both racks delivered to the line: the shipment is done and leaves the live state.
    for rack in [R1, R2] {
        let out = p.input(Input::Picking(PickingInput::RackMoved {
            rack: rack.into(),
            to: RackStatus::Delivered,
        }));
        assert_eq!(out, Outcome::Applied);
    }
    let last = p
        .changes
        .iter()
        .rev()
        .find_map(|c| match c {
            Change::Shipment(s) => Some(s.status),
            _ => None,
        })
        .unwrap();
    assert_eq!(last, ShipmentStatus::Delivered);
    // The rack came, the skipped part did not: its call is neither delivered nor covered.
    let left = p.core.calls().find(|c| c.id == short.call).unwrap();
    assert_eq!(left.status, CallStatus::Created, "{left:?}");
    assert_eq!(
        left.short_shipped.as_deref(),
        Some("paint defect, re-spray")
    );
    let mut reused = asn(&p, &[]);
    reused.racks.clear();
    assert_eq!(
        ship(&mut p, reused).field(),
        Some("racks"),
        "the number is free again once the shipment is done"
    );
}

#[test]
fn a_late_eta_alerts_both_sides_at_once_and_clears_when_it_improves() {
    let mut p = loaded();
    let subject = "bumpco/ASN-0001";
    // Due 20 takts after broadcast; expected in 40 min: late before it leaves.
    let first = asn(&p, &[R1]);
    assert_eq!(ship(&mut p, first), Outcome::Applied);
    let late = p
        .core
        .alarm(AlarmKind::ShipmentLate, subject)
        .expect("raised");
    assert!(late.is_active(), "{late:?}");
    let risk = last_shipment(&p)
        .at_risk
        .expect("the supplier hears it too");
    assert_eq!(risk.family, "bumper");
    assert!(risk.late_min >= 19, "{risk:?}");
    let id = last_shipment(&p).id;
    let now = p.now;
    let eta = |tenant: &str, minutes| {
        Input::Suppliers(SupplierInput::UpdateEta {
            tenant: tenant.into(),
            shipment: id,
            eta: now + TimeDelta::minutes(minutes),
        })
    };
    // Nobody else moves it; an ETA in the past is refused by field.
    let other = eta("trimco", 5);
    assert!(p.input(other).is_rejected());
    let past = eta("bumpco", -5);
    assert_eq!(p.input(past).field(), Some("eta"));
    let sooner = eta("bumpco", 5);
    assert_eq!(p.input(sooner), Outcome::Applied);
    assert_eq!(last_shipment(&p).at_risk, None);
    assert!(
        !p.core
            .alarm(AlarmKind::ShipmentLate, subject)
            .unwrap()
            .is_active()
    );
    // Arrived: no more ETAs.
    let arrived = p.input(Input::Suppliers(SupplierInput::ShipmentArrived {
        shipment: id,
    }));
    assert_eq!(arrived, Outcome::Applied);
    let s = last_shipment(&p);
    assert_eq!(
        (s.status, s.arrived_at),
        (ShipmentStatus::Arrived, Some(p.now))
    );
    let again = eta("bumpco", 10);
    assert!(p.input(again).is_rejected());
}

#[test]
fn a_rack_delivered_before_an_earlier_one_is_a_sequence_error() {
    let mut p = loaded();
    let first = asn(&p, &[R1]);
    assert_eq!(ship(&mut p, first), Outcome::Applied);
    let out = p.input(Input::Picking(PickingInput::RackMoved {
        rack: R2.into(),
        to: RackStatus::Delivered,
    }));
    assert_eq!(
        out,
        Outcome::Applied,
        "delivered all the same: the parts are at the line"
    );
    let alarm = p
        .core
        .alarm(AlarmKind::SequenceError, "bumper")
        .expect("raised");
    assert!(
        alarm.message.contains(R2) && alarm.message.contains(R1),
        "{}",
        alarm.message
    );
    // In order, no error.
    let mut p = loaded();
    let first = asn(&p, &[R1]);
    assert_eq!(ship(&mut p, first), Outcome::Applied);
    for rack in [R1, R2] {
        p.input(Input::Picking(PickingInput::RackMoved {
            rack: rack.into(),
            to: RackStatus::Delivered,
        }));
    }
    assert!(p.core.alarm(AlarmKind::SequenceError, "bumper").is_none());
}

fn last_shipment(p: &Plant) -> takt_core::suppliers::Shipment {
    p.changes
        .iter()
        .rev()
        .find_map(|c| match c {
            Change::Shipment(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a shipment row")
}

#[test]
fn a_shipment_whose_racks_leave_unreported_is_done_all_the_same() {
    let mut p = loaded();
    let first = asn(&p, &[R1]);
    assert_eq!(ship(&mut p, first), Outcome::Applied);
    // Nobody reports the rack delivered; its vehicles reach the station 20 positions on (their
    // parts missed) and the rack leaves the live state with its calls.
    for n in 8..=30 {
        p.bc(std_rec(n, n));
    }
    assert_eq!(p.rack_status(R1), None, "the rack left the live state");
    assert_eq!(last_shipment(&p).status, ShipmentStatus::Delivered);
    // Its number is free again, so nothing is stuck in transit.
    let mut reused = asn(&p, &[]);
    reused.racks.clear();
    assert_eq!(ship(&mut p, reused).field(), Some("racks"));
}
