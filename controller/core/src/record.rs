//! Broadcast records: the raw form the line sends and the validated form the core runs on.

use std::hash::Hasher;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigIndex, LineConfig};
use crate::seq::SeqNo;
use crate::vin::Vin;

/// A broadcast record as it arrived, before validation; this is what the journal stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    pub seq: u32,
    pub vin: String,
    #[serde(default)]
    pub body: String,
    pub model: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// A record that passed validation against its line's configuration.
///
/// Invariant: `seq` within the modulus, `vin` legal (check digit verified where configured),
/// `model` and every option code known; options sorted and deduplicated so that two records
/// that differ only in option order are the same payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: SeqNo,
    pub vin: Vin,
    pub body: String,
    pub model: String,
    pub options: Vec<String>,
}

impl Record {
    pub fn validate(raw: &RawRecord, line: &LineConfig, cfg: &ConfigIndex) -> Result<Self, String> {
        let seq = SeqNo::new(raw.seq, line.modulus)?;
        let vin = if line.vin_check_digit {
            Vin::parse_checked(&raw.vin)
        } else {
            Vin::parse(&raw.vin)
        }
        .map_err(|e| format!("VIN `{}`: {e}", raw.vin))?;
        if !cfg.is_model(&raw.model) {
            return Err(format!("unknown model `{}`", raw.model));
        }
        let mut options = Vec::with_capacity(raw.options.len());
        for code in &raw.options {
            let code = code.trim();
            if code.is_empty() {
                continue;
            }
            cfg.is_option(code)?;
            options.push(code.to_owned());
        }
        options.sort();
        options.dedup();
        // Two values for one key (`SEAT=A` and `SEAT=B`) cannot both be true.
        for pair in options.windows(2) {
            if pair[0].split_once('=').map(|(k, _)| k) == pair[1].split_once('=').map(|(k, _)| k) {
                return Err(format!(
                    "conflicting option codes `{}` and `{}`",
                    pair[0], pair[1]
                ));
            }
        }
        Ok(Self {
            seq,
            vin,
            body: raw.body.trim().to_owned(),
            model: raw.model.clone(),
            options,
        })
    }

    /// Everything but the sequence number: what makes a repeat a duplicate or a correction.
    pub fn same_payload(&self, other: &Record) -> bool {
        self.vin == other.vin
            && self.body == other.body
            && self.model == other.model
            && self.options == other.options
    }

    /// The payload reduced to a [`PayloadDigest`], for telling repeats from corrections.
    pub fn digest(&self) -> PayloadDigest {
        let mut hash = fnv::FnvHasher::default();
        let mut field = |bytes: &[u8]| {
            hash.write(&(bytes.len() as u64).to_le_bytes());
            hash.write(bytes);
        };
        field(self.vin.as_str().as_bytes());
        field(self.body.as_bytes());
        field(self.model.as_bytes());
        field(&(self.options.len() as u64).to_le_bytes());
        for option in &self.options {
            field(option.as_bytes());
        }
        PayloadDigest(hash.finish())
    }

    pub fn has_option(&self, code: &str) -> bool {
        self.options
            .binary_search_by(|o| o.as_str().cmp(code))
            .is_ok()
    }
}

/// A record's payload (everything but its sequence number) in 64 bits: all the tracker keeps of
/// each settled position, where a whole record per position made up most of every snapshot.
/// Equal payloads give equal digests; different ones share a digest with odds of about 1 in
/// 2^64. FNV-1a over each field's length and bytes, fed explicitly rather than through `Hash`
/// impls, so that a digest saved in a snapshot means the same after a toolchain upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadDigest(u64);

#[cfg(test)]
mod tests {
    use super::*;

    fn record(vin: &str, body: &str, model: &str, options: &[&str]) -> Record {
        Record {
            seq: SeqNo::new(7, 10_000).expect("in range"),
            vin: Vin::parse(vin).expect("valid VIN"),
            body: body.to_owned(),
            model: model.to_owned(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    #[test]
    fn digests_tell_payloads_apart_and_ignore_the_sequence_number() {
        let base = record("WBA00000000000001", "B1", "X3", &["SEAT=S1", "WHL=W2"]);
        let mut renumbered = base.clone();
        renumbered.seq = SeqNo::new(8, 10_000).expect("in range");
        assert_eq!(renumbered.digest(), base.digest());
        let others = [
            record("WBA00000000000002", "B1", "X3", &["SEAT=S1", "WHL=W2"]),
            record("WBA00000000000001", "B2", "X3", &["SEAT=S1", "WHL=W2"]),
            record("WBA00000000000001", "B1", "X5", &["SEAT=S1", "WHL=W2"]),
            record("WBA00000000000001", "B1", "X3", &["SEAT=S1"]),
            // Field boundaries count: the same bytes split differently are another payload.
            record("WBA00000000000001", "B1", "X3", &["SEAT=S1WHL=W2"]),
            record("WBA00000000000001", "B1X", "3", &["SEAT=S1", "WHL=W2"]),
        ];
        for other in &others {
            assert_ne!(other.digest(), base.digest(), "{other:?}");
        }
    }

    #[test]
    fn a_digest_is_the_same_on_every_build() {
        // Digests are saved in snapshots: if this value changes, snapshots taken before the
        // change would see corrections as repeats. Change the digest only with a snapshot
        // format change.
        let digest = record("WBA00000000000001", "B1", "X3", &["SEAT=S1", "WHL=W2"]).digest();
        assert_eq!(digest, PayloadDigest(10_420_877_240_839_425_573));
    }
}
