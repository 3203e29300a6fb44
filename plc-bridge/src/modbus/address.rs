//! Register addresses: one of the four Modbus tables plus a 0-based protocol address.
//!
//! Accepted notations (see [`RegisterAddress::parse`]):
//! - typed, 0-based (what goes on the wire): `co:5`, `di:5`, `ir:5`, `hr:40`;
//! - vendor 1-based: `0xxxx` coils, `1xxxx` discrete inputs, `3xxxx` input registers, `4xxxx`
//!   holding registers, 5 digits (`40001` = `hr:0`) or 6 digits (`400001` = `hr:0`, up to
//!   `465536` = `hr:65535`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Read/write bits (function codes 1, 5, 15).
    Coil,
    /// Read-only bits (function code 2).
    DiscreteInput,
    /// Read-only words (function code 4).
    InputRegister,
    /// Read/write words (function codes 3, 6, 16).
    HoldingRegister,
}

impl Table {
    /// Whether the table holds single bits rather than 16-bit words.
    #[must_use]
    pub fn is_bit(self) -> bool {
        matches!(self, Self::Coil | Self::DiscreteInput)
    }

    /// Whether a client can write to the table.
    #[must_use]
    pub fn is_writable(self) -> bool {
        matches!(self, Self::Coil | Self::HoldingRegister)
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Coil => "co",
            Self::DiscreteInput => "di",
            Self::InputRegister => "ir",
            Self::HoldingRegister => "hr",
        }
    }
}

/// A table and a 0-based protocol address. Invariant: `address` is what goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegisterAddress {
    /// Which table.
    pub table: Table,
    /// 0-based protocol address.
    pub address: u16,
}

/// Why an address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Empty input.
    #[error("empty register address")]
    Empty,
    /// A `tt:n` form with an unknown table prefix.
    #[error("unknown table `{0}` (expected co, di, ir or hr)")]
    UnknownTable(String),
    /// Not a number where one is needed.
    #[error("`{0}` is not a register number")]
    NotANumber(String),
    /// A 0-based address above 65535.
    #[error("address {0} is above 65535")]
    OutOfRange(u64),
    /// A vendor notation with a leading digit other than 0, 1, 3, 4, or the wrong length.
    #[error(
        "`{0}` is not a vendor address (0xxxx coils, 1xxxx discrete inputs, 3xxxx input registers, 4xxxx holding registers; 5 or 6 digits)"
    )]
    BadVendorNotation(String),
    /// Vendor notation is 1-based: `40000` / `400000` have no register.
    #[error("`{0}` is register 0 in 1-based vendor notation; the first one is 1")]
    VendorZero(String),
}

impl RegisterAddress {
    /// A typed 0-based address.
    #[must_use]
    pub fn new(table: Table, address: u16) -> Self {
        Self { table, address }
    }

    /// Parses the notations listed in the module documentation.
    ///
    /// # Errors
    /// [`AddressError`] naming what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if let Some((prefix, number)) = text.split_once(':') {
            let table = match prefix.trim().to_ascii_lowercase().as_str() {
                "co" | "coil" => Table::Coil,
                "di" => Table::DiscreteInput,
                "ir" => Table::InputRegister,
                "hr" => Table::HoldingRegister,
                other => return Err(AddressError::UnknownTable(other.to_owned())),
            };
            let number = number.trim();
            let value: u64 = number
                .parse()
                .map_err(|_| AddressError::NotANumber(number.to_owned()))?;
            let address = u16::try_from(value).map_err(|_| AddressError::OutOfRange(value))?;
            return Ok(Self::new(table, address));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::NotANumber(text.to_owned()));
        }
        if !(text.len() == 5 || text.len() == 6) {
            return Err(AddressError::BadVendorNotation(text.to_owned()));
        }
        let table = match text.as_bytes()[0] {
            b'0' => Table::Coil,
            b'1' => Table::DiscreteInput,
            b'3' => Table::InputRegister,
            b'4' => Table::HoldingRegister,
            _ => return Err(AddressError::BadVendorNotation(text.to_owned())),
        };
        let one_based: u64 = text[1..]
            .parse()
            .map_err(|_| AddressError::NotANumber(text.to_owned()))?;
        if one_based == 0 {
            return Err(AddressError::VendorZero(text.to_owned()));
        }
        let address =
            u16::try_from(one_based - 1).map_err(|_| AddressError::OutOfRange(one_based - 1))?;
        Ok(Self::new(table, address))
    }

    /// The address `offset` further on in the same table, if it stays within 0..=65535.
    #[must_use]
    pub fn offset(self, offset: u32) -> Option<Self> {
        let address = u32::from(self.address).checked_add(offset)?;
        Some(Self::new(self.table, u16::try_from(address).ok()?))
    }
}

impl fmt::Display for RegisterAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.table.prefix(), self.address)
    }
}

impl FromStr for RegisterAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for RegisterAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_notations() {
        use Table::*;
        let cases = [
            ("hr:40", HoldingRegister, 40),
            ("HR:0", HoldingRegister, 0),
            ("co:7", Coil, 7),
            ("di:65535", DiscreteInput, 65535),
            ("ir:3", InputRegister, 3),
            ("00001", Coil, 0),
            ("10010", DiscreteInput, 9),
            ("30001", InputRegister, 0),
            ("40001", HoldingRegister, 0),
            ("49999", HoldingRegister, 9998),
            ("400001", HoldingRegister, 0),
            ("465536", HoldingRegister, 65535),
            ("000017", Coil, 16),
            (" 40041 ", HoldingRegister, 40),
        ];
        for (text, table, address) in cases {
            assert_eq!(
                RegisterAddress::parse(text),
                Ok(RegisterAddress::new(table, address)),
                "{text}"
            );
        }
    }

    #[test]
    fn refused_notations() {
        let cases = [
            ("", AddressError::Empty),
            ("xx:1", AddressError::UnknownTable("xx".into())),
            ("hr:abc", AddressError::NotANumber("abc".into())),
            ("hr:65536", AddressError::OutOfRange(65536)),
            ("20001", AddressError::BadVendorNotation("20001".into())),
            ("4001", AddressError::BadVendorNotation("4001".into())),
            ("4000001", AddressError::BadVendorNotation("4000001".into())),
            ("40000", AddressError::VendorZero("40000".into())),
            ("465537", AddressError::OutOfRange(65536)),
            ("4x001", AddressError::NotANumber("4x001".into())),
        ];
        for (text, error) in cases {
            assert_eq!(RegisterAddress::parse(text), Err(error), "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        let address = RegisterAddress::new(Table::DiscreteInput, 12);
        assert_eq!(address.to_string().parse(), Ok(address));
    }
}
