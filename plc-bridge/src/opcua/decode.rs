//! From OPC UA values to broadcast fields.
//!
//! PLCs disagree on types: a sequence number may be a UInt16, an Int32 or the string `"0042"`;
//! a model an integer code or a string; option codes a string array, a delimited string or
//! fixed-width codes packed together; strings padded with blanks or NULs. Each field accepts
//! every reasonable form and names the field and the value when it cannot.

use ::opcua::types::{DataValue, Variant};
use takt_core::RawRecord;

use super::config::{OptionsFormat, Unmapped};

/// A field that could not be read as what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: &'static str,
    pub problem: String,
}

fn error(field: &'static str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field,
        problem: problem.into(),
    }
}

/// The value of a read, or why there is none (a bad status names its code).
pub(crate) fn value<'a>(field: &'static str, dv: &'a DataValue) -> Result<&'a Variant, FieldError> {
    if let Some(status) = dv.status
        && !status.is_good()
    {
        return Err(error(field, format!("read status {status}")));
    }
    dv.value
        .as_ref()
        .ok_or_else(|| error(field, "no value (null)"))
}

/// A PLC string with its padding removed.
fn text(v: &Variant) -> Option<String> {
    match v {
        Variant::String(s) => Some(
            s.value()
                .as_deref()
                .unwrap_or("")
                .trim_matches(|c: char| c.is_whitespace() || c == '\0')
                .to_owned(),
        ),
        _ => None,
    }
}

fn integer(v: &Variant) -> Option<i128> {
    Some(match v {
        Variant::SByte(n) => (*n).into(),
        Variant::Byte(n) => (*n).into(),
        Variant::Int16(n) => (*n).into(),
        Variant::UInt16(n) => (*n).into(),
        Variant::Int32(n) => (*n).into(),
        Variant::UInt32(n) => (*n).into(),
        Variant::Int64(n) => (*n).into(),
        Variant::UInt64(n) => (*n).into(),
        _ => return None,
    })
}

/// A sequence number (or counter): any integer type or a decimal string, within u32.
pub(crate) fn number(field: &'static str, v: &Variant) -> Result<u32, FieldError> {
    let n = match (integer(v), text(v)) {
        (Some(n), _) => n,
        (None, Some(s)) => s
            .parse::<i128>()
            .map_err(|_| error(field, format!("`{s}` is not a number")))?,
        _ => return Err(error(field, format!("{} is not a number", describe(v)))),
    };
    u32::try_from(n).map_err(|_| error(field, format!("{n} is out of range")))
}

/// A string field; integers (model codes) are taken as their decimal text.
pub(crate) fn string(field: &'static str, v: &Variant) -> Result<String, FieldError> {
    match (text(v), integer(v)) {
        (Some(s), _) => Ok(s),
        (None, Some(n)) => Ok(n.to_string()),
        _ => Err(error(field, format!("{} is not text", describe(v)))),
    }
}

/// Boolean, or an integer where non-zero is true.
pub(crate) fn flag(field: &'static str, v: &Variant) -> Result<bool, FieldError> {
    match (v, integer(v)) {
        (Variant::Boolean(b), _) => Ok(*b),
        (_, Some(n)) => Ok(n != 0),
        _ => Err(error(field, format!("{} is not a boolean", describe(v)))),
    }
}

/// Option codes from a string array or one string, as `format` says, in the plant's
/// `KEY=VALUE` form.
pub(crate) fn options(v: &Variant, format: &OptionsFormat) -> Result<Vec<String>, FieldError> {
    let mut pieces = Vec::new();
    match v {
        Variant::Array(array) => {
            for (i, element) in array.values.iter().enumerate() {
                let code = text(element).ok_or_else(|| {
                    error(
                        OPTIONS,
                        format!("element {i}: {} is not text", describe(element)),
                    )
                })?;
                if !code.is_empty() {
                    pieces.push(code);
                }
            }
        }
        Variant::Empty => {}
        other => {
            let s = text(other)
                .ok_or_else(|| error(OPTIONS, format!("{} is not text", describe(other))))?;
            if !format.positions.is_empty() {
                return positional(&s, format);
            }
            split(&s, format, &mut pieces)?;
        }
    }
    let mut codes = Vec::with_capacity(pieces.len());
    for piece in pieces {
        codes.extend(canonical(piece, format)?);
    }
    Ok(codes)
}

const OPTIONS: &str = "options";

fn split(s: &str, format: &OptionsFormat, out: &mut Vec<String>) -> Result<(), FieldError> {
    let pieces = s
        .split(|c: char| c.is_whitespace() || format.separators.contains(c))
        .filter(|p| !p.is_empty());
    for piece in pieces {
        match format.width {
            None => out.push(piece.to_owned()),
            Some(width) => {
                let chars: Vec<char> = piece.chars().collect();
                if !chars.len().is_multiple_of(width) {
                    return Err(error(
                        OPTIONS,
                        format!("`{piece}` is not a whole number of {width}-character codes"),
                    ));
                }
                out.extend(chars.chunks(width).map(|c| c.iter().collect::<String>()));
            }
        }
    }
    Ok(())
}

/// One code as the PLC wrote it → the plant's `KEY=VALUE` code, or nothing (an unmapped bare
/// code the format ignores).
fn canonical(piece: String, format: &OptionsFormat) -> Result<Option<String>, FieldError> {
    if let Some(code) = format.codes.get(&piece) {
        return Ok(Some(code.clone()));
    }
    if let Some((key, value)) = piece.split_once(format.key_value) {
        return Ok(Some(format!("{key}={value}")));
    }
    match (format.codes.is_empty(), format.unmapped) {
        (false, Unmapped::Ignore) => Ok(None),
        (false, Unmapped::Reject) => Err(error(
            OPTIONS,
            format!("code `{piece}` is not in `options_format.codes`"),
        )),
        // No table: the plant's validation names the code and what it expected.
        (true, _) => Ok(Some(piece)),
    }
}

/// A fixed-width positional string: each configured option at its own characters.
fn positional(s: &str, format: &OptionsFormat) -> Result<Vec<String>, FieldError> {
    let chars: Vec<char> = s.chars().collect();
    let mut codes = Vec::with_capacity(format.positions.len());
    for position in &format.positions {
        let end = position.start + position.width;
        let Some(cut) = chars.get(position.start..end) else {
            // A PLC string is often trimmed of trailing blanks: a short string means absent.
            if chars.len() <= position.start {
                continue;
            }
            return Err(error(
                OPTIONS,
                format!(
                    "`{s}` ends inside {} (characters {}..{end})",
                    position.key, position.start
                ),
            ));
        };
        let sent: String = cut.iter().collect::<String>().trim().to_owned();
        if sent.is_empty() {
            continue;
        }
        let value = if position.values.is_empty() {
            sent
        } else {
            position.values.get(&sent).cloned().ok_or_else(|| {
                error(
                    OPTIONS,
                    format!(
                        "`{sent}` at characters {}..{end} is not a value of {} in `options_format.positions`",
                        position.start, position.key
                    ),
                )
            })?
        };
        codes.push(format!("{}={value}", position.key));
    }
    Ok(codes)
}

pub(crate) fn describe(v: &Variant) -> String {
    match v {
        Variant::Array(a) => format!("an array of {} values", a.values.len()),
        Variant::Empty => "an empty value".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The values of one record's nodes, read together, in [`RecordValues`] order.
#[derive(Debug)]
pub(crate) struct RecordValues<'a> {
    pub(crate) seq: &'a DataValue,
    pub(crate) vin: &'a DataValue,
    pub(crate) body: Option<&'a DataValue>,
    pub(crate) model: &'a DataValue,
    pub(crate) options: &'a DataValue,
}

impl RecordValues<'_> {
    /// The record, or the first field that is not what it should be.
    pub(crate) fn decode(&self, format: &OptionsFormat) -> Result<RawRecord, FieldError> {
        Ok(RawRecord {
            seq: number("seq", value("seq", self.seq)?)?,
            vin: string("vin", value("vin", self.vin)?)?,
            body: match self.body {
                Some(body) => string("body", value("body", body)?)?,
                None => String::new(),
            },
            model: string("model", value("model", self.model)?)?,
            options: options(value("options", self.options)?, format)?,
        })
    }

    /// An empty FIFO slot: nothing was ever written to it.
    pub(crate) fn is_empty_slot(&self) -> bool {
        let blank = |dv: &DataValue| {
            dv.value
                .as_ref()
                .is_none_or(|v| text(v).is_some_and(|s| s.is_empty()))
        };
        blank(self.vin)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ::opcua::types::{Array, StatusCode, UAString, VariantScalarTypeId};

    use super::super::config::OptionPosition;
    use super::*;

    fn s(text: &str) -> Variant {
        Variant::String(UAString::from(text))
    }

    #[test]
    fn numbers_come_in_every_integer_type_and_as_text() {
        for v in [
            Variant::UInt16(42),
            Variant::Int32(42),
            Variant::UInt64(42),
            s(" 0042\0\0"),
        ] {
            assert_eq!(number("seq", &v), Ok(42), "{v:?}");
        }
        for (v, problem) in [
            (Variant::Int32(-1), "-1 is out of range"),
            (s("4x2"), "`4x2` is not a number"),
            (Variant::Boolean(true), "is not a number"),
        ] {
            let err = number("seq", &v).expect_err("not a sequence number");
            assert_eq!(err.field, "seq");
            assert!(err.problem.contains(problem), "{err}");
        }
    }

    #[test]
    fn option_codes_from_arrays_delimited_and_packed_strings() {
        let plain = OptionsFormat::default();
        let array = Variant::Array(Box::new(
            Array::new(
                VariantScalarTypeId::String,
                vec![s("P7L"), s(" WH2 "), s("")],
            )
            .expect("array"),
        ));
        assert_eq!(
            options(&array, &plain),
            Ok(vec!["P7L".into(), "WH2".into()])
        );
        assert_eq!(
            options(&s("P7L, WH2;SR1  X"), &plain),
            Ok(vec!["P7L".into(), "WH2".into(), "SR1".into(), "X".into()])
        );
        let packed = OptionsFormat {
            separators: String::new(),
            width: Some(3),
            ..OptionsFormat::default()
        };
        assert_eq!(
            options(&s("P7LWH2"), &packed),
            Ok(vec!["P7L".into(), "WH2".into()])
        );
        assert!(options(&s("P7LW"), &packed).is_err());
        assert_eq!(options(&Variant::Empty, &plain), Ok(vec![]));
        assert!(options(&Variant::Int32(3), &plain).is_err());
    }

    #[test]
    fn a_bad_read_status_names_the_field_and_code() {
        let dv = DataValue {
            status: Some(StatusCode::BadNodeIdUnknown),
            ..DataValue::null()
        };
        let err = value("vin", &dv).expect_err("bad status");
        assert_eq!(err.field, "vin");
        assert!(err.problem.contains("BadNodeIdUnknown"), "{err}");
    }

    #[test]
    fn model_codes_may_be_integers_and_flags_numbers() {
        assert_eq!(string("model", &Variant::UInt16(501)), Ok("501".into()));
        assert_eq!(flag("running", &Variant::Byte(1)), Ok(true));
        assert_eq!(flag("running", &Variant::Boolean(false)), Ok(false));
        assert!(flag("running", &s("yes")).is_err());
    }
    #[test]
    fn codes_with_another_key_separator_become_key_value() {
        let colon = OptionsFormat {
            key_value: ':',
            ..OptionsFormat::default()
        };
        assert_eq!(
            options(&s("SEAT:LTHR-BLK, DRIVE:LHD;WHEEL=19-ALLOY"), &colon),
            Ok(vec![
                "SEAT=LTHR-BLK".into(),
                "DRIVE=LHD".into(),
                "WHEEL=19-ALLOY".into()
            ])
        );
    }

    #[test]
    fn bare_codes_are_mapped_through_the_table_or_rejected_by_name() {
        let mut table = OptionsFormat {
            codes: BTreeMap::from([
                ("P7L".into(), "SEAT=LTHR-BLK".into()),
                ("WH2".into(), "WHEEL=18-ALLOY".into()),
            ]),
            ..OptionsFormat::default()
        };
        assert_eq!(
            options(&s("P7L WH2 DRIVE=LHD"), &table),
            Ok(vec![
                "SEAT=LTHR-BLK".into(),
                "WHEEL=18-ALLOY".into(),
                "DRIVE=LHD".into()
            ])
        );
        let err = options(&s("P7L X9Q"), &table).expect_err("unmapped");
        assert!(err.problem.contains("`X9Q`"), "{err}");
        table.unmapped = Unmapped::Ignore;
        assert_eq!(
            options(&s("P7L X9Q"), &table),
            Ok(vec!["SEAT=LTHR-BLK".into()])
        );
    }

    #[test]
    fn positional_strings_are_cut_at_their_positions() {
        let format = OptionsFormat {
            positions: vec![
                OptionPosition {
                    key: "DRIVE".into(),
                    start: 0,
                    width: 1,
                    values: BTreeMap::from([
                        ("L".into(), "LHD".into()),
                        ("R".into(), "RHD".into()),
                    ]),
                },
                OptionPosition {
                    key: "SEAT".into(),
                    start: 1,
                    width: 8,
                    values: BTreeMap::new(),
                },
                OptionPosition {
                    key: "HITCH".into(),
                    start: 9,
                    width: 2,
                    values: BTreeMap::from([("HY".into(), "YES".into())]),
                },
            ],
            ..OptionsFormat::default()
        };
        assert_eq!(
            options(&s("LLTHR-BLKHY"), &format),
            Ok(vec![
                "DRIVE=LHD".into(),
                "SEAT=LTHR-BLK".into(),
                "HITCH=YES".into()
            ])
        );
        // Blanks and a string trimmed before the last position: those options are absent.
        assert_eq!(
            options(&s("R        "), &format),
            Ok(vec!["DRIVE=RHD".into()])
        );
        let err = options(&s("X"), &format).expect_err("unknown value");
        assert!(
            err.problem.contains("`X`") && err.problem.contains("DRIVE"),
            "{err}"
        );
        let err = options(&s("LLTHR"), &format).expect_err("cut short");
        assert!(err.problem.contains("SEAT"), "{err}");
    }
}
