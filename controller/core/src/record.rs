//! Broadcast records: the raw form the line sends and the validated form the core runs on.

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

    pub fn has_option(&self, code: &str) -> bool {
        self.options
            .binary_search_by(|o| o.as_str().cmp(code))
            .is_ok()
    }
}
