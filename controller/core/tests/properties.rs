//! Property tests: the sequence guarantees hold for any arrival order the window allows, a
//! snapshot taken anywhere continues exactly like an uninterrupted run, and projection rows taken
//! once per batch are the rows taken after every input.
#![allow(clippy::unwrap_used)]

mod plant;

use std::collections::BTreeMap;

use plant::{Plant, std_rec};
use proptest::prelude::*;
use takt_core::SequencingInput;
use takt_core::io::{Action, Change, Input, StreamEvent};
use takt_core::{AlarmKind, AlarmState, Core, State};

const MODULUS: u32 = 10_000;
/// The fixture's window: a record may arrive at most `WINDOW - 1` ahead of the expected one.
const WINDOW: usize = 10;

/// Records `0..n` from `s0`, shuffled within chunks (so never more than a window ahead), with
/// repeats of already-sent records dropped in later. Record 0 comes first: it sets the base.
fn arrivals() -> impl Strategy<Value = (u32, usize, Vec<usize>)> {
    (0..MODULUS, 2usize..120, 1usize..=WINDOW).prop_flat_map(|(s0, n, chunk)| {
        let keys = proptest::collection::vec(any::<u32>(), n);
        let dups = proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            0..20,
        );
        (Just(s0), Just(n), Just(chunk), keys, dups).prop_map(|(s0, n, chunk, keys, dups)| {
            let mut order: Vec<usize> = vec![0];
            for c in (1..n).collect::<Vec<_>>().chunks(chunk) {
                let mut c = c.to_vec();
                c.sort_by_key(|i| keys[*i]);
                order.extend(c);
            }
            for (which, at) in dups {
                let src = which.index(order.len());
                let at = src + 1 + at.index(order.len() - src);
                order.insert(at, order[src]);
            }
            (s0, n, order)
        })
    })
}

fn seat_calls_created(actions: &[Action]) -> Vec<(u32, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stream(StreamEvent::CallCreated(c)) if c.family == "seat" => {
                Some((c.seq.value(), c.vin.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// A mixed input stream over `order[from..to]`: broadcasts, presses of whatever is lit every
/// `work_every` broadcasts, a line stop halfway.
fn mixed_run(p: &mut Plant, s0: u32, order: &[usize], work_every: usize, from: usize, to: usize) {
    for (k, i) in order.iter().enumerate().take(to).skip(from) {
        p.at(30);
        p.bc(std_rec((s0 + *i as u32) % MODULUS, *i as u32));
        if k % work_every == 0 && p.core.task("P1").is_some() {
            p.work(1);
        }
        if k == order.len() / 2 {
            p.input(Input::Sequencing(SequencingInput::LineState {
                line: "L".into(),
                running: false,
                reason: Some("test".into()),
            }));
            p.at(120);
            p.input(Input::Sequencing(SequencingInput::LineState {
                line: "L".into(),
                running: true,
                reason: None,
            }));
        }
    }
}

/// What the store holds after applying `rows` in order: the last row of each entity.
fn projections(rows: &[Change]) -> BTreeMap<String, String> {
    rows.iter()
        .map(|row| {
            let key = match row {
                Change::Vehicle(v) => format!("vehicle {}", v.id),
                Change::Call(c) => format!("call {}", c.id),
                Change::Rack(r) => format!("rack {}", r.id),
                Change::Task(t) => format!("task {}", t.id),
                Change::Alarm(a) => format!("alarm {:?} {}", a.key.kind, a.key.subject),
                Change::Line(l) => format!("line {}", l.line),
                Change::Coverage(c) => format!("coverage {} {}", c.line, c.family),
                Change::ApiToken(t) => format!("token {}", t.id),
                Change::Shipment(s) => format!("shipment {}", s.id),
                Change::Demand(d) => {
                    format!("demand {} {} {} {}", d.line, d.hour, d.family, d.part)
                }
                Change::Event(e) => format!("event {}", e.id),
            };
            (key, serde_json::to_string(row).unwrap())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_vehicle_is_accepted_once_in_sequence((s0, n, order) in arrivals()) {
        let mut p = Plant::new();
        for i in &order {
            let seq = (s0 + *i as u32) % MODULUS;
            let out = p.bc(std_rec(seq, *i as u32));
            prop_assert!(!out.is_rejected(), "{:?} for record {}", out, i);
        }
        let created = seat_calls_created(&p.actions);
        let expected: Vec<(u32, String)> =
            (0..n).map(|i| ((s0 + i as u32) % MODULUS, plant::vin(i as u32))).collect();
        prop_assert_eq!(created, expected);
        for kind in [AlarmKind::GapExpired, AlarmKind::SequenceJump, AlarmKind::LateRecord, AlarmKind::RecordRejected] {
            prop_assert_eq!(p.alarm_state(kind, "L/B1"), AlarmState::Normal);
        }
        prop_assert!(p.core.vehicles().count() <= 4, "finished vehicles left the live state");
    }

    #[test]
    fn a_snapshot_anywhere_continues_like_an_uninterrupted_run(
        (s0, _n, order) in arrivals(),
        cut in any::<prop::sample::Index>(),
        work_every in 1usize..5,
    ) {
        let run = |p: &mut Plant, from: usize, to: usize| {
            mixed_run(p, s0, &order, work_every, from, to);
        };
        let mut whole = Plant::new();
        run(&mut whole, 0, order.len());

        let cut = cut.index(order.len() + 1);
        let mut first = Plant::new();
        run(&mut first, 0, cut);
        let json = serde_json::to_string(first.core.state()).unwrap();
        let state: State = serde_json::from_str(&json).unwrap();
        let mut second = Plant { core: Core::restore(plant::config(), state), ..first };
        run(&mut second, cut, order.len());

        prop_assert_eq!(second.core.state(), whole.core.state());
        prop_assert_eq!(second.actions, whole.actions);
    }

    #[test]
    fn rows_taken_once_per_batch_are_the_rows_taken_after_every_input(
        (s0, _n, order) in arrivals(),
        batch in 2usize..60,
        work_every in 1usize..5,
    ) {
        let rows = |take_every: usize| {
            let mut p = Plant::new();
            p.take_every = take_every;
            mixed_run(&mut p, s0, &order, work_every, 0, order.len());
            p.take_changes();
            projections(&p.changes)
        };
        prop_assert_eq!(rows(batch), rows(1));
    }
}
