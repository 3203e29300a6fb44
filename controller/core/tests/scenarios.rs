//! Scenario tests of the core, one acceptance case each, against `fixtures/small.toml`:
//! seat (in-plant, rack 2, install 3 positions after B1), bumper (supplier, rack 3, 4 positions,
//! model M1 only).
#![allow(clippy::unwrap_used)]

mod plant;

use plant::{Plant, events, lights, rec, std_rec, vin};
use takt_core::io::{Action, Input, Outcome, StreamEvent};
use takt_core::model::{CallStatus, LightTarget, RackStatus, TaktStatus};
use takt_core::{AlarmKind, AlarmState};

use AlarmState::*;
use CallStatus::*;
use takt_core::{AlarmInput, PickingInput, SequencingInput};

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

#[test]
fn in_order_records_create_calls_and_light_the_first_pick() {
    let mut p = Plant::new();
    for (seq, n) in [(1, 1), (2, 2), (3, 3)] {
        assert_eq!(p.bc(std_rec(seq, n)), Outcome::Applied);
    }
    assert_eq!(p.live_seqs(), [1, 2, 3]);
    assert_eq!(
        p.calls("seat"),
        [
            (1, s("SEAT-L"), Created),
            (2, s("SEAT-L"), Created),
            (3, s("SEAT-L"), Created)
        ]
    );
    let a = p.drain();
    assert_eq!(lights(&a), ["on A1 Green 1"], "only the first call is lit");
    assert_eq!(
        events(&a),
        [
            "created 1 seat",
            "created 1 bumper",
            "created 2 seat",
            "created 2 bumper",
            "created 3 seat",
            "created 3 bumper",
            "rack closed bumper-000001"
        ]
    );
}

#[test]
fn a_duplicate_changes_nothing() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.drain();
    assert_eq!(
        p.bc(std_rec(1, 1)),
        Outcome::Ignored("duplicate of 0001".into())
    );
    assert_eq!(p.drain(), []);
    assert_eq!(p.live_seqs(), [1]);
}

#[test]
fn records_are_validated_and_rejections_raise_an_alarm() {
    // (record, reason fragment)
    let cases = [
        (rec(1, 1, "M9", &[]), "unknown model `M9`"),
        (
            rec(1, 1, "M1", &["SEAT=VELVET"]),
            "unknown value `VELVET` for option `SEAT`",
        ),
        (
            rec(1, 1, "M1", &["ROOF=GLASS"]),
            "unknown option key `ROOF`",
        ),
        (rec(1, 1, "M1", &["SEATLTHR"]), "not of the form KEY=VALUE"),
        (
            rec(1, 1, "M1", &["SEAT=LTHR", "SEAT=CLTH"]),
            "conflicting option codes",
        ),
        (
            rec(10_000, 1, "M1", &[]),
            "outside the line's range 0..9999",
        ),
        (
            takt_core::RawRecord {
                vin: "SHORT".into(),
                ..std_rec(1, 1)
            },
            "VIN must be 17 characters",
        ),
        (
            takt_core::RawRecord {
                vin: "WVWZZZ1JZ0000000O".into(),
                ..std_rec(1, 1)
            },
            "is not allowed",
        ),
    ];
    for (record, fragment) in cases {
        let mut p = Plant::new();
        match p.bc(record.clone()) {
            Outcome::Rejected(reason) => {
                assert!(reason.contains(fragment), "{reason:?} lacks {fragment:?}");
            }
            other => panic!("{record:?} gave {other:?}"),
        }
        assert_eq!(
            p.live_seqs(),
            Vec::<u32>::new(),
            "{record:?} changed the state"
        );
        assert_eq!(
            p.alarm_state(AlarmKind::RecordRejected, "L/B1"),
            ClearedUnacknowledged
        );
    }
}

#[test]
fn most_records_rejected_is_a_condition_that_clears_when_good_records_come_back() {
    // Defaults: 5 rejected among the last 10 records raise `rejection_rate`.
    let mut p = Plant::new();
    let rate = |p: &Plant| p.alarm_state(AlarmKind::RejectionRate, "L/B1");
    for seq in 1..=4 {
        assert!(matches!(
            p.bc(rec(seq, seq, "M9", &[])),
            Outcome::Rejected(_)
        ));
        assert_eq!(rate(&p), Normal, "{seq} rejected: below the threshold");
    }
    // A record the source could not read counts too (journaled as a condition event).
    let unreadable = |active| {
        Input::Alarms(AlarmInput::Condition {
            alarm: AlarmKind::RecordRejected,
            subject: "L/B1".into(),
            active,
            message: "unreadable record: VIN is not a string".into(),
        })
    };
    p.input(unreadable(true));
    p.input(unreadable(false));
    assert_eq!(rate(&p), ActiveUnacknowledged, "5 of 5 rejected");
    // Good records push the rejected ones out of the window: the condition clears once fewer
    // than 5 of the last 10 were rejected (the 6th good record).
    for n in 1..=5 {
        assert_eq!(p.bc(std_rec(n, 100 + n)), Outcome::Applied);
        assert_eq!(rate(&p), ActiveUnacknowledged, "{n} good records");
    }
    assert_eq!(p.bc(std_rec(6, 106)), Outcome::Applied);
    assert_eq!(rate(&p), ClearedUnacknowledged);
}

#[test]
fn a_correction_before_pick_updates_the_call_and_relights_the_bin() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bc(std_rec(2, 2));
    p.drain();
    // Vehicle 2 is not being picked yet: its call just changes.
    assert_eq!(
        p.bc(rec(2, 2, "M1", &["SEAT=CLTH", "COLOR=RED"])),
        Outcome::Applied
    );
    assert_eq!(p.calls("seat")[1], (2, s("SEAT-C"), Created));
    let a = p.drain();
    assert_eq!(events(&a), ["changed 2 seat Created"]);
    assert_eq!(lights(&a), Vec::<String>::new());
    // Vehicle 1 is lit at bin A1: the correction moves the light to bin A2.
    p.bc(rec(1, 1, "M1", &["SEAT=CLTH", "COLOR=BLUE"]));
    let a = p.drain();
    assert_eq!(lights(&a), ["off A1", "on A2 Green 2"]);
    assert_eq!(
        events(&a),
        ["changed 1 seat Created", "changed 1 bumper Created"]
    );
    assert_eq!(
        p.alarm_state(AlarmKind::CorrectionAfterPick, "seat"),
        Normal
    );
    let bumper = p
        .core
        .calls()
        .find(|c| c.family == "bumper" && c.seq.value() == 1)
        .unwrap();
    assert_eq!(
        (bumper.part.as_deref(), bumper.corrections),
        (Some("BMP-B"), 1)
    );
}

#[test]
fn a_correction_after_pick_raises_an_alarm() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    assert_eq!(p.bin("A1"), Outcome::Applied);
    p.drain();
    p.bc(rec(1, 1, "M1", &["SEAT=CLTH", "COLOR=RED"]));
    assert_eq!(
        p.alarm_state(AlarmKind::CorrectionAfterPick, "seat"),
        ClearedUnacknowledged
    );
    let msg = &p
        .core
        .alarm(AlarmKind::CorrectionAfterPick, "seat")
        .unwrap()
        .message;
    assert!(msg.contains("SEAT-L") && msg.contains("SEAT-C"), "{msg}");
    // The call says what the vehicle needs now; its status stays where the part is.
    assert_eq!(p.calls("seat")[0], (1, s("SEAT-C"), Picked));
}

#[test]
fn a_correction_in_a_closed_rack_raises_its_own_alarm() {
    let mut p = Plant::new();
    // Bumper racks hold 3: the third call closes the supplier rack.
    for n in 1..=3 {
        p.bc(std_rec(n, n));
    }
    assert_eq!(p.rack_status("bumper-000001"), Some(RackStatus::Closed));
    assert!(events(&p.drain()).contains(&"rack closed bumper-000001".to_owned()));
    p.bc(rec(2, 2, "M1", &["SEAT=LTHR", "COLOR=BLUE"]));
    assert_eq!(
        p.alarm_state(AlarmKind::CorrectionInClosedRack, "bumper"),
        ClearedUnacknowledged
    );
}

#[test]
fn a_gap_is_held_backfilled_and_released_in_order() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    assert_eq!(p.bc(std_rec(4, 4)), Outcome::Applied);
    assert_eq!(p.bc(std_rec(3, 3)), Outcome::Applied);
    assert_eq!(p.live_seqs(), [1], "3 and 4 wait for 2");
    assert_eq!(
        p.alarm_state(AlarmKind::SequenceGap, "L/B1"),
        ActiveUnacknowledged
    );
    let backfills: Vec<_> = p
        .drain()
        .into_iter()
        .filter_map(|a| match a {
            Action::Backfill { from, to, .. } => Some((from.value(), to.value())),
            _ => None,
        })
        .collect();
    assert_eq!(backfills, [(2, 3), (2, 2)]);
    p.at(4);
    assert_eq!(p.bc(std_rec(2, 2)), Outcome::Applied);
    assert_eq!(p.live_seqs(), [1, 2, 3, 4]);
    assert_eq!(
        p.alarm_state(AlarmKind::SequenceGap, "L/B1"),
        ClearedUnacknowledged
    );
    assert_eq!(p.alarm_state(AlarmKind::GapExpired, "L/B1"), Normal);
}

#[test]
fn an_expired_gap_marks_positions_unknown_and_refuses_the_late_record() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bc(std_rec(3, 3));
    assert_eq!(
        p.core.poll_timeout(),
        Some(plant::t0() + chrono::TimeDelta::milliseconds(5000))
    );
    p.at(4).tick();
    assert_eq!(p.live_seqs(), [1], "not yet: 4 s of 5");
    p.at(1).tick();
    assert_eq!(p.live_seqs(), [1, 3]);
    assert_eq!(
        p.alarm_state(AlarmKind::GapExpired, "L/B1"),
        ClearedUnacknowledged
    );
    assert_eq!(
        p.core.poll_timeout(),
        p.core.next_takt_status(),
        "no gap left to wait for: only the line's heartbeat"
    );
    match p.bc(std_rec(2, 2)) {
        Outcome::Rejected(r) => assert!(r.contains("given up as unknown"), "{r}"),
        other => panic!("late record gave {other:?}"),
    }
    assert_eq!(
        p.alarm_state(AlarmKind::LateRecord, "L/B1"),
        ClearedUnacknowledged
    );
    assert_eq!(p.live_seqs(), [1, 3]);
}

#[test]
fn the_counter_wraps_from_9999_to_0000() {
    // (arrival order, live sequence afterwards)
    let cases: [(&[u32], &[u32]); 3] = [
        (&[9998, 9999, 0, 1], &[9998, 9999, 0, 1]),
        (&[9999, 1, 0], &[9999, 0, 1]),
        (&[9997, 0, 9998, 9999], &[9997, 9998, 9999, 0]),
    ];
    for (arrivals, expect) in cases {
        let mut p = Plant::new();
        for (i, seq) in arrivals.iter().enumerate() {
            assert_eq!(
                p.bc(std_rec(*seq, i as u32)),
                Outcome::Applied,
                "{arrivals:?}"
            );
        }
        assert_eq!(p.live_seqs(), expect, "{arrivals:?}");
        assert_eq!(
            p.alarm_state(AlarmKind::SequenceJump, "L/B1"),
            Normal,
            "{arrivals:?}"
        );
    }
}

#[test]
fn a_jump_beyond_the_window_resyncs_with_an_alarm() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    assert_eq!(p.bc(std_rec(500, 2)), Outcome::Applied);
    assert_eq!(
        p.alarm_state(AlarmKind::SequenceJump, "L/B1"),
        ClearedUnacknowledged
    );
    assert_eq!(p.bc(std_rec(501, 3)), Outcome::Applied);
    assert_eq!(
        p.live_seqs(),
        [500, 501],
        "vehicle 1 passed every station during the jump"
    );
}

#[test]
fn a_resequenced_vehicle_moves_to_its_new_number() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bc(std_rec(2, 2));
    p.drain();
    let out = p.input(Input::Sequencing(SequencingInput::Resequence {
        line: "L".into(),
        point: "B1".into(),
        vin: vin(1),
        seq: 3,
    }));
    assert_eq!(out, Outcome::Applied);
    assert_eq!(p.live_seqs(), [2, 3]);
    let a = p.drain();
    // Calls of a vehicle go in family order; the new bumper call completes rack 1.
    assert_eq!(
        events(&a),
        [
            "cancelled 1 bumper",
            "cancelled 1 seat",
            "created 3 seat",
            "created 3 bumper",
            "rack closed bumper-000001"
        ]
    );
    assert_eq!(
        lights(&a),
        ["off A1", "on A1 Green 1"],
        "the pick moves on to vehicle 2"
    );
    assert_eq!(
        p.alarm_state(AlarmKind::ResequenceAfterPick, "seat"),
        Normal,
        "nothing was picked"
    );
    // The same vehicle broadcast again without a resequence is refused.
    p.bc(std_rec(4, 2));
    assert_eq!(
        p.alarm_state(AlarmKind::RecordRejected, "L/B1"),
        ClearedUnacknowledged
    );
    assert_eq!(p.live_seqs(), [2, 3]);
    // An unknown VIN cannot be resequenced.
    let out = p.input(Input::Sequencing(SequencingInput::Resequence {
        line: "L".into(),
        point: "B1".into(),
        vin: vin(99),
        seq: 5,
    }));
    assert!(out.is_rejected());
}

#[test]
fn a_resequence_after_pick_raises_an_alarm() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bin("A1");
    p.input(Input::Sequencing(SequencingInput::Resequence {
        line: "L".into(),
        point: "B1".into(),
        vin: vin(1),
        seq: 2,
    }));
    assert_eq!(
        p.alarm_state(AlarmKind::ResequenceAfterPick, "seat"),
        ClearedUnacknowledged
    );
}

#[test]
fn cancellation_removes_the_vehicle_and_skips_its_pick() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bc(rec(2, 2, "M1", &["SEAT=CLTH"]));
    p.drain();
    assert_eq!(
        p.input(Input::Sequencing(SequencingInput::Cancel {
            line: "L".into(),
            vin: vin(1)
        })),
        Outcome::Applied
    );
    assert_eq!(p.live_seqs(), [2]);
    let a = p.drain();
    assert_eq!(events(&a), ["cancelled 1 bumper", "cancelled 1 seat"]);
    assert_eq!(lights(&a), ["off A1", "on A2 Green 2"]);
    assert_eq!(p.alarm_state(AlarmKind::CancelAfterPick, "seat"), Normal);
    // Cancelling after the pick needs a person to take the part back.
    p.bin("A2");
    p.input(Input::Sequencing(SequencingInput::Cancel {
        line: "L".into(),
        vin: vin(2),
    }));
    assert_eq!(
        p.alarm_state(AlarmKind::CancelAfterPick, "seat"),
        ClearedUnacknowledged
    );
    assert!(p.core.task("P1").is_none());
    assert!(
        p.input(Input::Sequencing(SequencingInput::Cancel {
            line: "L".into(),
            vin: vin(2)
        }))
        .is_rejected()
    );
}

#[test]
fn an_unresolved_variant_blocks_the_station_until_resolved() {
    let mut p = Plant::new();
    p.bc(rec(1, 1, "M1", &["COLOR=RED"])); // no SEAT option: no seat rule matches
    p.bc(std_rec(2, 2));
    assert_eq!(p.calls("seat")[0], (1, None, Created));
    assert_eq!(
        p.alarm_state(AlarmKind::UnresolvedVariant, "seat"),
        ClearedUnacknowledged
    );
    assert!(
        p.core.task("P1").is_none(),
        "picking past it would shift every slot"
    );
    let call = p
        .core
        .calls()
        .find(|c| c.family == "seat" && c.part.is_none())
        .unwrap()
        .id;
    let bad = p.input(Input::Sequencing(SequencingInput::ResolveCall {
        call,
        part: "BMP-R".into(),
    }));
    assert!(bad.is_rejected(), "a bumper is not a seat");
    p.drain();
    assert_eq!(
        p.input(Input::Sequencing(SequencingInput::ResolveCall {
            call,
            part: "SEAT-C".into()
        })),
        Outcome::Applied
    );
    assert_eq!(lights(&p.drain()), ["on A2 Green 2"]);
    // A family that does not apply to the model gives no call at all.
    p.bc(rec(3, 3, "M2", &["SEAT=LTHR", "COLOR=RED"]));
    assert!(p.calls("bumper").iter().all(|(seq, ..)| *seq != 3));
}

#[test]
fn a_wrong_pick_lights_red_and_nothing_advances() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.drain();
    assert_eq!(p.bin("A2"), Outcome::Applied);
    assert_eq!(
        p.alarm_state(AlarmKind::WrongPick, "P1"),
        ClearedUnacknowledged
    );
    assert_eq!(lights(&p.drain()), ["err A2"]);
    assert_eq!(p.calls("seat")[0].2, Created);
    // A slot pressed while a pick is lit is a wrong put.
    p.slot(1);
    assert_eq!(
        p.alarm_state(AlarmKind::WrongPut, "P1"),
        ClearedUnacknowledged
    );
    p.drain();
    assert_eq!(p.bin("A1"), Outcome::Applied);
    assert_eq!(
        lights(&p.drain()),
        ["off A2", "off slot 1", "off A1", "on slot 1 Blue 1"]
    );
    assert_eq!(p.calls("seat")[0].2, Picked);
    // Buttons that do not exist are bad input, not wrong picks.
    assert!(p.bin("Z9").is_rejected());
    assert!(p.slot(3).is_rejected());
    assert_eq!(p.slot(1), Outcome::Applied);
    assert_eq!(p.calls("seat")[0].2, Put);
}

#[test]
fn pressing_the_button_just_confirmed_again_is_a_repeat_within_the_window_only() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bc(std_rec(2, 2));
    p.drain();
    assert_eq!(p.bin("A1"), Outcome::Applied);
    p.drain();
    // The operator saw the light late and pressed again: no alarm, no light, nothing moves.
    p.at(1);
    assert!(
        matches!(p.bin("A1"), Outcome::Ignored(ref why) if why.contains("again")),
        "a repeat"
    );
    assert_eq!(p.alarm_state(AlarmKind::WrongPick, "P1"), Normal);
    assert_eq!(lights(&p.drain()), Vec::<String>::new());
    assert_eq!(p.slot(1), Outcome::Applied);
    p.at(1);
    assert!(matches!(p.slot(1), Outcome::Ignored(_)), "a repeated put");
    assert_eq!(p.alarm_state(AlarmKind::WrongPut, "P1"), Normal);
    p.drain();
    // Past the window (2 s by default) the same press is a wrong pick again.
    p.at(3);
    assert_eq!(p.slot(1), Outcome::Applied);
    assert_eq!(
        p.alarm_state(AlarmKind::WrongPut, "P1"),
        ClearedUnacknowledged
    );
    assert_eq!(lights(&p.drain()), ["err slot 1"]);
    // A wrong bin right after a confirm is still wrong.
    assert_eq!(p.bin("A1"), Outcome::Applied);
    p.at(1);
    assert_eq!(p.bin("A2"), Outcome::Applied);
    assert_eq!(
        p.alarm_state(AlarmKind::WrongPick, "P1"),
        ClearedUnacknowledged
    );
}

#[test]
fn racks_fill_in_sequence_and_close_when_full_or_by_hand() {
    let mut p = Plant::new();
    for n in 1..=3 {
        p.bc(std_rec(n, n));
    }
    p.work(2);
    let rack = p
        .core
        .racks()
        .find(|r| r.id == "seat-000001")
        .unwrap()
        .clone();
    assert_eq!(rack.status, RackStatus::Closed);
    let first_two: Vec<_> = p
        .core
        .calls()
        .filter(|c| c.family == "seat")
        .take(2)
        .map(|c| Some(c.id))
        .collect();
    assert_eq!(
        rack.slots, first_two,
        "slot i holds the i-th call in sequence"
    );
    // Third seat: picked, so a put into slot 1 of rack 2 is pending and it cannot close.
    p.bin("A1");
    let out = p.input(Input::Picking(PickingInput::CloseRack {
        family: "seat".into(),
    }));
    assert_eq!(
        out,
        Outcome::Rejected("rack seat-000002 has a put pending in slot 1".into())
    );
    p.slot(1);
    assert_eq!(
        p.input(Input::Picking(PickingInput::CloseRack {
            family: "seat".into()
        })),
        Outcome::Applied
    );
    assert_eq!(p.rack_status("seat-000002"), Some(RackStatus::Closed));
    assert!(
        p.input(Input::Picking(PickingInput::CloseRack {
            family: "seat".into()
        }))
        .is_rejected(),
        "no open rack left"
    );
    // Ship and deliver: the calls follow the rack.
    let mv = |to| {
        Input::Picking(PickingInput::RackMoved {
            rack: "seat-000001".into(),
            to,
        })
    };
    assert!(p.input(mv(RackStatus::Open)).is_rejected());
    assert_eq!(p.input(mv(RackStatus::Shipped)), Outcome::Applied);
    assert_eq!(p.input(mv(RackStatus::Delivered)), Outcome::Applied);
    assert_eq!(
        p.calls("seat")[..2].iter().map(|c| c.2).collect::<Vec<_>>(),
        [Delivered, Delivered]
    );
}

#[test]
fn vehicles_install_and_leave_the_live_state() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bc(std_rec(2, 2));
    p.work(2);
    p.input(Input::Picking(PickingInput::RackMoved {
        rack: "seat-000001".into(),
        to: RackStatus::Delivered,
    }));
    p.bc(std_rec(3, 3));
    p.bc(std_rec(4, 4)); // vehicle 1 reaches the seat station (3 positions)
    assert_eq!(p.calls("seat")[0], (1, s("SEAT-L"), Installed));
    assert_eq!(
        p.alarm_state(AlarmKind::PartMissingAtInstall, "seat"),
        Normal
    );
    p.bc(std_rec(5, 5)); // vehicle 1 reaches the bumper station (4): its rack never came
    assert_eq!(
        p.alarm_state(AlarmKind::PartMissingAtInstall, "bumper"),
        ClearedUnacknowledged
    );
    assert_eq!(
        p.live_seqs(),
        [2, 3, 4, 5],
        "vehicle 1 is past its last station"
    );
    for n in 6..200 {
        p.bc(std_rec(n, n));
    }
    assert_eq!(
        p.core.vehicles().count(),
        4,
        "live state is bounded by the farthest station"
    );
    assert!(p.core.calls().count() <= 8);
    assert!(p.core.racks().count() <= 2);
}

#[test]
fn coverage_holds_during_a_line_stop_and_due_times_move_out() {
    let mut p = Plant::new();
    for n in 1..=3 {
        p.bc(std_rec(n, n));
    }
    assert_eq!(p.core.coverage("seat").unwrap().minutes, 0.0);
    assert_eq!(
        p.alarm_state(AlarmKind::CoverageLow, "seat"),
        ActiveUnacknowledged
    );
    p.work(3);
    let cov = p.core.coverage("seat").unwrap();
    assert_eq!((cov.vehicles, cov.minutes), (3, 3.0));
    assert_eq!(
        p.alarm_state(AlarmKind::CoverageLow, "seat"),
        ClearedUnacknowledged
    );
    let due_before: Vec<_> = p.core.calls().map(|c| c.due_at).collect();
    assert_eq!(due_before[0], plant::t0() + chrono::TimeDelta::minutes(3));

    let stop = Input::Sequencing(SequencingInput::LineState {
        line: "L".into(),
        running: false,
        reason: Some("andon 12".into()),
    });
    assert_eq!(p.input(stop.clone()), Outcome::Applied);
    assert!(matches!(p.input(stop), Outcome::Ignored(_)));
    p.at(600).tick();
    assert_eq!(
        p.core.coverage("seat").unwrap().minutes,
        3.0,
        "a stopped line uses no parts"
    );
    assert_eq!(
        p.core.line_status("L").unwrap().reason.as_deref(),
        Some("andon 12")
    );
    p.input(Input::Sequencing(SequencingInput::LineState {
        line: "L".into(),
        running: true,
        reason: None,
    }));
    assert_eq!(p.core.line_status("L").unwrap().stopped_ms_total, 600_000);
    let due_after: Vec<_> = p.core.calls().map(|c| c.due_at).collect();
    for (b, a) in due_before.iter().zip(&due_after) {
        assert_eq!(*a - *b, chrono::TimeDelta::minutes(10));
    }
    // Running again, the next vehicle moves the line: vehicle 1 installs, coverage drops a takt.
    p.bc(std_rec(4, 4));
    assert_eq!(p.core.coverage("seat").unwrap().vehicles, 2);
}

#[test]
fn operators_acknowledge_and_shelve_alarms() {
    let mut p = Plant::new();
    let cond = |active| {
        Input::Alarms(AlarmInput::Condition {
            alarm: AlarmKind::DeviceOffline,
            subject: "ptl-1".into(),
            active,
            message: "no answer".into(),
        })
    };
    let id = "device_offline:ptl-1".to_owned();
    let ack = || {
        Input::Alarms(AlarmInput::Acknowledge {
            alarm: "device_offline:ptl-1".into(),
        })
    };
    // (input, state after) through every ISA-18.2 transition
    let steps = [
        (cond(true), ActiveUnacknowledged),
        (ack(), ActiveAcknowledged),
        (cond(false), Normal),
        (cond(true), ActiveUnacknowledged),
        (cond(false), ClearedUnacknowledged),
        (cond(true), ActiveUnacknowledged),
        (cond(false), ClearedUnacknowledged),
        (ack(), Normal),
    ];
    for (i, (input, state)) in steps.into_iter().enumerate() {
        assert!(!p.input(input).is_rejected(), "step {i}");
        assert_eq!(
            p.alarm_state(AlarmKind::DeviceOffline, "ptl-1"),
            state,
            "step {i}"
        );
    }
    assert!(
        p.input(ack()).is_rejected(),
        "nothing to acknowledge at normal"
    );
    assert!(
        p.input(Input::Alarms(AlarmInput::Acknowledge {
            alarm: "nope:x".into()
        }))
        .is_rejected()
    );
    let until = p.now + chrono::TimeDelta::minutes(5);
    assert!(
        p.input(Input::Alarms(AlarmInput::Shelve {
            alarm: id.clone(),
            until: Some(p.now)
        }))
        .is_rejected()
    );
    assert_eq!(
        p.input(Input::Alarms(AlarmInput::Shelve {
            alarm: id,
            until: Some(until)
        })),
        Outcome::Applied
    );
    assert!(
        p.core
            .alarm(AlarmKind::DeviceOffline, "ptl-1")
            .unwrap()
            .is_shelved(p.now)
    );
    let heartbeat = p.core.next_takt_status().expect("the line beats");
    assert_eq!(p.core.poll_timeout(), Some(until.min(heartbeat)));
    p.at(300).tick();
    assert!(
        !p.core
            .alarm(AlarmKind::DeviceOffline, "ptl-1")
            .unwrap()
            .is_shelved(p.now)
    );
    assert_eq!(
        p.core
            .alarm(AlarmKind::DeviceOffline, "ptl-1")
            .unwrap()
            .occurrences,
        3
    );
}

#[test]
fn reset_station_clears_red_lights_and_relights_the_task() {
    let mut p = Plant::new();
    p.bc(std_rec(1, 1));
    p.bin("A2");
    p.drain();
    assert_eq!(
        p.input(Input::Picking(PickingInput::ResetStation {
            station: "P1".into()
        })),
        Outcome::Applied
    );
    assert_eq!(lights(&p.drain()), ["all off", "on A1 Green 1"]);
    assert_eq!(
        lights(
            &p.core
                .station_lights("P1")
                .into_iter()
                .map(Action::Device)
                .collect::<Vec<_>>()
        ),
        ["on A1 Green 1"]
    );
    assert!(p.press(LightTarget::Bin("A1".into())) == Outcome::Applied);
}

#[test]
fn every_line_beats_once_a_takt_and_at_once_when_it_stops_or_starts() {
    let mut p = Plant::new();
    let beats = |actions: &[Action]| -> Vec<TaktStatus> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Stream(StreamEvent::TaktStatus(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    // The first input of all finds the line's first beat due.
    p.bc(std_rec(1, 1));
    let first = beats(&p.drain());
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        (first[0].line.as_str(), first[0].running, first[0].takt_ms),
        ("L", true, 60_000)
    );
    assert_eq!(
        first[0].points[0].expected_seq,
        Some(2),
        "after vehicle 1, B1 waits for 2"
    );
    let next = plant::t0() + chrono::TimeDelta::minutes(1);
    assert_eq!(p.core.next_takt_status(), Some(next));
    // Within the takt, nothing more; at its end the writer's tick brings the next beat.
    p.at(30).bc(std_rec(2, 2));
    assert!(beats(&p.drain()).is_empty());
    assert_eq!(p.core.poll_timeout(), Some(next));
    p.at(30).tick();
    let second = beats(&p.drain());
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].at, second[0].points[0].expected_seq),
        (next, Some(3))
    );
    // A stop is heard at once, with its reason, and the takt restarts from it.
    p.at(10)
        .input(Input::Sequencing(SequencingInput::LineState {
            line: "L".into(),
            running: false,
            reason: Some("andon 12".into()),
        }));
    let stopped = beats(&p.drain());
    assert_eq!(stopped.len(), 1);
    assert_eq!(
        (stopped[0].running, stopped[0].reason.as_deref()),
        (false, Some("andon 12"))
    );
    assert_eq!(
        p.core.next_takt_status(),
        Some(next + chrono::TimeDelta::seconds(70))
    );
    // A stopped line still beats, so a follower can tell stopped from silent.
    p.at(60).tick();
    let still = beats(&p.drain());
    assert_eq!((still.len(), still[0].running), (1, false));
}
