//! Alarms with ISA-18.2 states.
//!
//! Condition alarms (a gap waiting, coverage low, a device offline) go active and clear with
//! their condition. Event alarms (a wrong pick, a rejected record) have no lasting condition:
//! they go active and clear in the same step, so they wait in *cleared-unacknowledged* until an
//! operator acknowledges them. Shelving hides an alarm from annunciation until a time, without
//! changing its state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{AlarmSettings, Priority};

macro_rules! alarm_kinds {
    ($($kind:ident => $name:literal, $prio:ident;)*) => {
        /// What an alarm is about; with a subject it names one alarm.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum AlarmKind { $($kind,)* }

        impl AlarmKind {
            pub const ALL: &'static [AlarmKind] = &[$(AlarmKind::$kind,)*];

            /// Name used in configuration and APIs.
            pub fn name(self) -> &'static str {
                match self { $(AlarmKind::$kind => $name,)* }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(AlarmKind::$kind),)* _ => None }
            }

            pub fn default_priority(self) -> Priority {
                match self { $(AlarmKind::$kind => Priority::$prio,)* }
            }
        }
    };
}

alarm_kinds! {
    RecordRejected => "record_rejected", High;
    RejectionRate => "rejection_rate", Critical;
    SequenceGap => "sequence_gap", Medium;
    GapExpired => "gap_expired", Critical;
    SequenceJump => "sequence_jump", Critical;
    LateRecord => "late_record", High;
    CorrectionAfterPick => "correction_after_pick", High;
    CorrectionInClosedRack => "correction_in_closed_rack", Critical;
    CancelAfterPick => "cancel_after_pick", High;
    ResequenceAfterPick => "resequence_after_pick", High;
    UnresolvedVariant => "unresolved_variant", High;
    WrongPick => "wrong_pick", Medium;
    WrongPut => "wrong_put", Medium;
    CoverageLow => "coverage_low", High;
    PartMissingAtInstall => "part_missing_at_install", Critical;
    SourceDisconnected => "source_disconnected", Critical;
    NoHandshake => "no_handshake", Critical;
    SourceLayoutMismatch => "source_layout_mismatch", Critical;
    DeviceOffline => "device_offline", High;
    DeviceDegraded => "device_degraded", High;
    CallUnacknowledged => "call_unacknowledged", High;
    ShortShipped => "short_shipped", High;
    ShipmentLate => "shipment_late", Critical;
    SequenceError => "sequence_error", Critical;
}

/// ISA-18.2 alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Normal,
    ActiveUnacknowledged,
    ActiveAcknowledged,
    ClearedUnacknowledged,
}

/// Which alarm: kind plus what it is about (a line/point, a station, a family).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlarmKey {
    pub kind: AlarmKind,
    pub subject: String,
}

impl AlarmKey {
    pub fn new(kind: AlarmKind, subject: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.into(),
        }
    }

    /// `kind:subject`, the id used by APIs and the store.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.name(), self.subject)
    }
}

/// One alarm and its history counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub key: AlarmKey,
    pub priority: Priority,
    pub state: AlarmState,
    pub message: String,
    pub shelved_until: Option<DateTime<Utc>>,
    /// When it last went active.
    pub raised_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    /// How often it went active.
    pub occurrences: u64,
}

impl Alarm {
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            AlarmState::ActiveUnacknowledged | AlarmState::ActiveAcknowledged
        )
    }

    pub fn is_shelved(&self, now: DateTime<Utc>) -> bool {
        self.shelved_until.is_some_and(|t| t > now)
    }
}

/// What an operator or the plant does to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Activate,
    Clear,
    Acknowledge,
}

/// The ISA-18.2 state table; `None` where the transition does not apply in that state.
pub fn next_state(state: AlarmState, t: Transition) -> Option<AlarmState> {
    use AlarmState::*;
    use Transition::*;
    match (state, t) {
        (Normal, Activate) | (ClearedUnacknowledged, Activate) => Some(ActiveUnacknowledged),
        (ActiveUnacknowledged, Acknowledge) => Some(ActiveAcknowledged),
        (ActiveUnacknowledged, Clear) => Some(ClearedUnacknowledged),
        (ActiveAcknowledged, Clear) | (ClearedUnacknowledged, Acknowledge) => Some(Normal),
        _ => None,
    }
}

/// What operators and adapters tell the alarms context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AlarmInput {
    Acknowledge {
        alarm: String,
    },
    /// Shelve until a time, or unshelve with `None`.
    Shelve {
        alarm: String,
        until: Option<DateTime<Utc>>,
    },
    /// A condition seen by an adapter (source disconnected, no handshake, device offline).
    Condition {
        alarm: AlarmKind,
        subject: String,
        active: bool,
        message: String,
    },
}

impl AlarmInput {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Acknowledge { .. } => "acknowledge",
            Self::Shelve { .. } => "shelve",
            Self::Condition { .. } => "condition",
        }
    }
}

/// All alarms of the plant; alarms back at normal stay listed with their counters.
///
/// Serialised as a list: JSON map keys must be strings and the key is a pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<Alarm>", into = "Vec<Alarm>")]
pub struct AlarmBook {
    alarms: BTreeMap<AlarmKey, Alarm>,
}

impl From<Vec<Alarm>> for AlarmBook {
    fn from(list: Vec<Alarm>) -> Self {
        Self {
            alarms: list.into_iter().map(|a| (a.key.clone(), a)).collect(),
        }
    }
}

impl From<AlarmBook> for Vec<Alarm> {
    fn from(book: AlarmBook) -> Self {
        book.alarms.into_values().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    #[error("no alarm `{0}`")]
    Unknown(String),
    #[error("alarm `{0}` is not waiting for an acknowledgement")]
    NothingToAcknowledge(String),
}

impl AlarmBook {
    pub fn get(&self, key: &AlarmKey) -> Option<&Alarm> {
        self.alarms.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Alarm> {
        self.alarms.values()
    }

    pub fn find(&self, id: &str) -> Option<&AlarmKey> {
        self.alarms.keys().find(|k| k.id() == id)
    }

    /// Condition became true. Returns the alarm if its state changed.
    pub fn activate(
        &mut self,
        now: DateTime<Utc>,
        key: AlarmKey,
        message: String,
        settings: &AlarmSettings,
    ) -> Option<&Alarm> {
        let priority = settings
            .priorities
            .get(key.kind.name())
            .copied()
            .unwrap_or_else(|| key.kind.default_priority());
        let alarm = self.alarms.entry(key.clone()).or_insert_with(|| Alarm {
            key,
            priority,
            state: AlarmState::Normal,
            message: String::new(),
            shelved_until: None,
            raised_at: now,
            changed_at: now,
            occurrences: 0,
        });
        let next = next_state(alarm.state, Transition::Activate)?;
        alarm.state = next;
        alarm.message = message;
        alarm.raised_at = now;
        alarm.changed_at = now;
        alarm.occurrences += 1;
        Some(alarm)
    }

    /// Condition became false. Returns the alarm if its state changed.
    pub fn clear(&mut self, now: DateTime<Utc>, key: &AlarmKey) -> Option<&Alarm> {
        let alarm = self.alarms.get_mut(key)?;
        alarm.state = next_state(alarm.state, Transition::Clear)?;
        alarm.changed_at = now;
        Some(alarm)
    }

    /// An event alarm: active and cleared in one step, so it waits for acknowledgement.
    pub fn event(
        &mut self,
        now: DateTime<Utc>,
        key: AlarmKey,
        message: String,
        settings: &AlarmSettings,
    ) -> Option<&Alarm> {
        let changed = self
            .activate(now, key.clone(), message.clone(), settings)
            .is_some();
        let alarm = self.alarms.get_mut(&key)?;
        if !changed {
            // Already active: a new occurrence still counts and carries the latest message.
            alarm.occurrences += 1;
            alarm.message = message;
            alarm.changed_at = now;
        }
        if alarm.state == AlarmState::ActiveUnacknowledged {
            alarm.state = AlarmState::ClearedUnacknowledged;
        }
        Some(alarm)
    }

    pub fn acknowledge(
        &mut self,
        now: DateTime<Utc>,
        key: &AlarmKey,
    ) -> Result<&Alarm, AlarmError> {
        let alarm = self
            .alarms
            .get_mut(key)
            .ok_or_else(|| AlarmError::Unknown(key.id()))?;
        alarm.state = next_state(alarm.state, Transition::Acknowledge)
            .ok_or_else(|| AlarmError::NothingToAcknowledge(key.id()))?;
        alarm.changed_at = now;
        Ok(alarm)
    }

    /// Shelve until `until`, or unshelve with `None`.
    pub fn shelve(
        &mut self,
        now: DateTime<Utc>,
        key: &AlarmKey,
        until: Option<DateTime<Utc>>,
    ) -> Result<&Alarm, AlarmError> {
        let alarm = self
            .alarms
            .get_mut(key)
            .ok_or_else(|| AlarmError::Unknown(key.id()))?;
        alarm.shelved_until = until;
        alarm.changed_at = now;
        Ok(alarm)
    }

    /// Shelves whose time has come are lifted; returns the keys that changed.
    pub fn expire_shelves(&mut self, now: DateTime<Utc>) -> Vec<AlarmKey> {
        let mut changed = Vec::new();
        for alarm in self.alarms.values_mut() {
            if alarm.shelved_until.is_some_and(|t| t <= now) {
                alarm.shelved_until = None;
                alarm.changed_at = now;
                changed.push(alarm.key.clone());
            }
        }
        changed
    }

    pub fn next_shelf_expiry(&self) -> Option<DateTime<Utc>> {
        self.alarms.values().filter_map(|a| a.shelved_until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlarmState::*;
    use Transition::*;

    #[test]
    fn every_isa_18_2_transition_is_in_the_table() {
        let table = [
            (Normal, Activate, Some(ActiveUnacknowledged)),
            (Normal, Clear, None),
            (Normal, Acknowledge, None),
            (ActiveUnacknowledged, Activate, None),
            (ActiveUnacknowledged, Acknowledge, Some(ActiveAcknowledged)),
            (ActiveUnacknowledged, Clear, Some(ClearedUnacknowledged)),
            (ActiveAcknowledged, Activate, None),
            (ActiveAcknowledged, Acknowledge, None),
            (ActiveAcknowledged, Clear, Some(Normal)),
            (ClearedUnacknowledged, Activate, Some(ActiveUnacknowledged)),
            (ClearedUnacknowledged, Acknowledge, Some(Normal)),
            (ClearedUnacknowledged, Clear, None),
        ];
        for (from, t, to) in table {
            assert_eq!(next_state(from, t), to, "{from:?} --{t:?}-->");
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AlarmKind::ALL {
            assert_eq!(AlarmKind::from_name(kind.name()), Some(*kind));
        }
        assert_eq!(AlarmKind::from_name("no_such_kind"), None);
    }
}
