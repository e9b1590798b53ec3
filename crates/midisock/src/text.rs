//! mido's text format: `note_on channel=0 note=60 velocity=64 time=0`.
//!
//! `Display` writes exactly what mido's `str(message)` writes for the same bytes. `FromStr`
//! accepts every line `str()` produces and everything `mido.Message.from_str` accepts: fields in
//! any order, omitted fields taking mido's defaults (0, velocity 64), a repeated field's last value
//! winning, and `time` as an int or float (checked, then ignored: see [`Message`]). It also accepts
//! `sysex data=()`, which mido prints but its own parser rejects.

use crate::message::{check_field, InvalidValue, Message, MessageType};
use std::fmt;
use std::str::FromStr;

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message_type().name())?;
        let mut result = Ok(());
        self.for_each_scalar(|name, value| {
            if result.is_ok() {
                result = write!(f, " {name}={value}");
            }
        });
        result?;
        if let Message::SysEx { data } = self {
            f.write_str(" data=(")?;
            for (i, byte) in data.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{byte}")?;
            }
            f.write_str(")")?;
        }
        f.write_str(" time=0")
    }
}

/// Why a line of text is not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseMessageError {
    /// The line is empty.
    Empty,
    /// The first word is not a mido message type.
    UnknownType(String),
    /// A word is not `name=value`.
    NotAField(String),
    /// The type has no field of this name.
    UnknownField { message_type: MessageType, field: String },
    /// A value is not a number of the right kind (`data` must be `(b,b,...)`).
    BadValue { field: String, value: String },
    /// A value is outside its range.
    OutOfRange(InvalidValue),
}

impl fmt::Display for ParseMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseMessageError::Empty => f.write_str("empty message text"),
            ParseMessageError::UnknownType(t) => write!(f, "unknown message type {t:?}"),
            ParseMessageError::NotAField(w) => write!(f, "expected name=value, got {w:?}"),
            ParseMessageError::UnknownField { message_type, field } => {
                write!(f, "{message_type} message has no attribute {field:?}")
            }
            ParseMessageError::BadValue { field, value } => {
                write!(f, "invalid {field} value {value:?}")
            }
            ParseMessageError::OutOfRange(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ParseMessageError {}

impl From<InvalidValue> for ParseMessageError {
    fn from(e: InvalidValue) -> Self {
        ParseMessageError::OutOfRange(e)
    }
}

/// Parses an integer the way Python's `int(str)` does for the forms that occur in practice:
/// optional sign, decimal digits, single underscores between digits.
fn parse_python_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    cleaned.parse().ok()
}

/// `time` accepts what mido's `_parse_time` does: an int, else a float (`1e3`, `inf`, `nan`).
fn is_python_number(text: &str) -> bool {
    if parse_python_int(text).is_some() {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return true;
    }
    // Python allows an underscore only between two digits.
    let bytes = unsigned.as_bytes();
    let underscores_ok = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'_' || (i > 0 && bytes[i - 1].is_ascii_digit() && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    underscores_ok && !unsigned.starts_with(['i', 'n']) && unsigned.replace('_', "").parse::<f64>().is_ok()
}

/// `data=(1,2,3)`. Like mido, the first and last characters are taken as the brackets without
/// looking at them (mido only rejects a value that ends with `)` but does not start with `(`);
/// unlike mido, `()` is the empty payload, which mido prints but cannot read back.
fn parse_data(value: &str) -> Option<Vec<u8>> {
    if value == "()" {
        return Some(Vec::new());
    }
    if !value.starts_with('(') && value.ends_with(')') {
        return None;
    }
    let mut chars = value.chars();
    chars.next();
    chars.next_back();
    let inner = chars.as_str();
    inner.split(',').map(|b| parse_python_int(b).and_then(|v| u8::try_from(v).ok().filter(|&v| v <= 0x7F))).collect()
}

/// Python's `str.split()` separators: Unicode white space plus the ASCII information separators
/// `\x1c`–`\x1f`.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

impl FromStr for Message {
    type Err = ParseMessageError;

    fn from_str(text: &str) -> Result<Message, ParseMessageError> {
        let mut words = text.split(is_python_space).filter(|w| !w.is_empty());
        let type_name = words.next().ok_or(ParseMessageError::Empty)?;
        let message_type =
            MessageType::from_name(type_name).ok_or_else(|| ParseMessageError::UnknownType(type_name.to_owned()))?;
        let names = message_type.field_names();

        // mido's defaults: every field 0, velocity 64, data empty.
        let mut values: [i64; 3] = [0; 3];
        for (slot, name) in values.iter_mut().zip(names) {
            if *name == "velocity" {
                *slot = 64;
            }
        }
        let mut data = Vec::new();

        for word in words {
            let (name, value) = word.split_once('=').ok_or_else(|| ParseMessageError::NotAField(word.to_owned()))?;
            let bad_value = || ParseMessageError::BadValue { field: name.to_owned(), value: value.to_owned() };
            if name == "time" {
                if !is_python_number(value) {
                    return Err(bad_value());
                }
            } else if name == "data" && message_type == MessageType::SysEx {
                data = parse_data(value).ok_or_else(bad_value)?;
            } else {
                let index = names
                    .iter()
                    .position(|n| *n == name)
                    .ok_or_else(|| ParseMessageError::UnknownField { message_type, field: name.to_owned() })?;
                let number = parse_python_int(value).ok_or_else(bad_value)?;
                values[index] = check_field(names[index], number)?;
            }
        }

        let mut next = values.into_iter();
        Message::from_fields(message_type, |_| Ok(next.next().unwrap_or(0)), || Ok(data))
    }
}
