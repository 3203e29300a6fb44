//! From OPC UA values to broadcast fields.
//!
//! PLCs disagree on types: a sequence number may be a UInt16, an Int32 or the string `"0042"`;
//! a model an integer code or a string; option codes a string array, a delimited string or
//! fixed-width codes packed together; strings padded with blanks or NULs. Each field accepts
//! every reasonable form and names the field and the value when it cannot.

use ::opcua::types::{DataValue, Variant};
use takt_core::RawRecord;

use super::config::OptionsFormat;

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

/// Option codes from a string array or one string split as `format` says.
pub(crate) fn options(v: &Variant, format: &OptionsFormat) -> Result<Vec<String>, FieldError> {
    const FIELD: &str = "options";
    let mut codes = Vec::new();
    match v {
        Variant::Array(array) => {
            for (i, element) in array.values.iter().enumerate() {
                let code = text(element).ok_or_else(|| {
                    error(
                        FIELD,
                        format!("element {i}: {} is not text", describe(element)),
                    )
                })?;
                if !code.is_empty() {
                    codes.push(code);
                }
            }
        }
        Variant::Empty => {}
        other => {
            let s = text(other)
                .ok_or_else(|| error(FIELD, format!("{} is not text", describe(other))))?;
            split(&s, format, &mut codes)?;
        }
    }
    Ok(codes)
}

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
                        "options",
                        format!("`{piece}` is not a whole number of {width}-character codes"),
                    ));
                }
                out.extend(chars.chunks(width).map(|c| c.iter().collect::<String>()));
            }
        }
    }
    Ok(())
}

fn describe(v: &Variant) -> String {
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
    use ::opcua::types::{Array, StatusCode, UAString, VariantScalarTypeId};

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
}
