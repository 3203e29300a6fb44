//! Variant rules: a vehicle's model and options to one part number per family.

use crate::config::FamilyConfig;
use crate::record::Record;

/// What a family needs for one vehicle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// The family does not apply to this model.
    NotApplicable,
    /// The first matching rule's part.
    Part(String),
    /// The family applies but no rule matched: an unresolved call.
    Unresolved,
}

pub(crate) fn resolve(family: &FamilyConfig, record: &Record) -> Need {
    resolve_for(family, &record.model, |o| record.has_option(o))
}

/// The same for a model and its options (`has_option`), as planned rather than broadcast.
pub(crate) fn resolve_for(
    family: &FamilyConfig,
    model: &str,
    has_option: impl Fn(&str) -> bool,
) -> Need {
    if !family.models.is_empty() && !family.models.iter().any(|m| m == model) {
        return Need::NotApplicable;
    }
    family
        .rules
        .iter()
        .find(|rule| {
            (rule.models.is_empty() || rule.models.iter().any(|m| m == model))
                && rule.options.iter().all(|o| has_option(o))
        })
        .map_or(Need::Unresolved, |rule| Need::Part(rule.part.clone()))
}
