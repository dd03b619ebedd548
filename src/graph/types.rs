//! Value types and values: the four v1 types and the literals and runtime
//! values that inhabit them.
//!
//! `f64` values compare by their bit pattern, with every NaN treated as one
//! canonical NaN, so that equality, hashing and the canonical encoding agree
//! and a function holding a NaN constant still equals itself.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// The v1 value types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    I64,
    F64,
    Bool,
    Unit,
}

impl Type {
    pub const ALL: [Type; 4] = [Type::I64, Type::F64, Type::Bool, Type::Unit];

    pub fn name(self) -> &'static str {
        match self {
            Type::I64 => "i64",
            Type::F64 => "f64",
            Type::Bool => "bool",
            Type::Unit => "unit",
        }
    }

    pub fn from_name(name: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Returns true if and only if values of this type support `add` and the
    /// other arithmetic ops.
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::I64 | Type::F64)
    }

    /// The stable tag of this type in the canonical encoding.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Type::I64 => 1,
            Type::F64 => 2,
            Type::Bool => 3,
            Type::Unit => 4,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.tag() == tag)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value: the literal of a `const` node, an argument, or a result.
#[derive(Clone, Copy, Debug)]
pub enum Value {
    I64(i64),
    F64(f64),
    Bool(bool),
    Unit,
}

/// The one bit pattern every NaN is treated as.
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// The bits of `x`, with every NaN mapped to one canonical NaN.
pub(crate) fn canonical_f64_bits(x: f64) -> u64 {
    if x.is_nan() {
        CANONICAL_NAN
    } else {
        x.to_bits()
    }
}

impl Value {
    pub fn ty(&self) -> Type {
        match self {
            Value::I64(_) => Type::I64,
            Value::F64(_) => Type::F64,
            Value::Bool(_) => Type::Bool,
            Value::Unit => Type::Unit,
        }
    }

    /// The value's payload as 8 bytes, as the canonical encoding writes it.
    pub(crate) fn payload_bits(&self) -> u64 {
        match *self {
            Value::I64(v) => v as u64,
            Value::F64(v) => canonical_f64_bits(v),
            Value::Bool(v) => v as u64,
            Value::Unit => 0,
        }
    }

    /// The literal spelling used by the text form: `5`, `-2.5`, `1e300`,
    /// `inf`, `NaN`, `true`, `()`. Every spelling parses back to an equal
    /// value, and an `f64` always shows a `.`, an exponent, `inf` or `NaN`
    /// so it can be told from an `i64`.
    pub fn literal(&self) -> String {
        match *self {
            Value::I64(v) => v.to_string(),
            Value::F64(v) if v.is_nan() => "NaN".to_string(),
            Value::F64(v) => format!("{v:?}"),
            Value::Bool(v) => v.to_string(),
            Value::Unit => "()".to_string(),
        }
    }

    /// Parses a literal as spelled by [`Value::literal`].
    pub fn parse_literal(text: &str) -> Option<Value> {
        match text {
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            "()" => return Some(Value::Unit),
            "inf" | "+inf" => return Some(Value::F64(f64::INFINITY)),
            "-inf" => return Some(Value::F64(f64::NEG_INFINITY)),
            "NaN" | "nan" => return Some(Value::F64(f64::NAN)),
            _ => {}
        }
        let digits = text.strip_prefix('-').unwrap_or(text);
        let first = digits.chars().next()?;
        if !first.is_ascii_digit() {
            return None;
        }
        if !digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        {
            return None;
        }
        if digits.chars().all(|c| c.is_ascii_digit()) {
            text.parse::<i64>().ok().map(Value::I64)
        } else {
            text.parse::<f64>().ok().map(Value::F64)
        }
    }
}

impl Value {
    /// Parses an argument of a known type, as a command line gives it: an
    /// `f64` parameter also takes an integer spelling (`2` means `2.0`).
    pub fn parse_as(ty: Type, text: &str) -> Result<Value, String> {
        let parsed = match (ty, Value::parse_literal(text)) {
            (Type::F64, Some(Value::I64(v))) => Some(Value::F64(v as f64)),
            (Type::Unit, None) if text == "unit" => Some(Value::Unit),
            (_, v) => v,
        };
        match parsed {
            Some(v) if v.ty() == ty => Ok(v),
            Some(v) => Err(format!("`{text}` is {}, expected {ty}", v.ty())),
            None => Err(format!("`{text}` is not a literal of type {ty}")),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.ty() == other.ty() && self.payload_bits() == other.payload_bits()
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ty().hash(state);
        self.payload_bits().hash(state);
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.literal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_round_trip() {
        let values = [
            Value::I64(0),
            Value::I64(i64::MIN),
            Value::I64(i64::MAX),
            Value::F64(0.0),
            Value::F64(-0.0),
            Value::F64(1.0),
            Value::F64(0.1),
            Value::F64(1e300),
            Value::F64(-2.5e-12),
            Value::F64(f64::INFINITY),
            Value::F64(f64::NEG_INFINITY),
            Value::F64(f64::NAN),
            Value::F64(f64::MIN_POSITIVE),
            Value::Bool(true),
            Value::Bool(false),
            Value::Unit,
        ];
        for v in values {
            assert_eq!(
                Value::parse_literal(&v.literal()),
                Some(v),
                "{}",
                v.literal()
            );
        }
    }

    #[test]
    fn float_literals_never_look_like_integers() {
        assert_eq!(Value::F64(2.0).literal(), "2.0");
        assert_eq!(Value::parse_literal("2"), Some(Value::I64(2)));
        assert_eq!(Value::parse_literal("2.0"), Some(Value::F64(2.0)));
    }

    #[test]
    fn nan_payloads_are_equal() {
        let other_nan = f64::from_bits(0xfff8_0000_0000_0001);
        assert!(other_nan.is_nan());
        assert_eq!(Value::F64(other_nan), Value::F64(f64::NAN));
        assert_ne!(Value::F64(0.0), Value::F64(-0.0));
    }

    #[test]
    fn arguments_parse_by_type() {
        assert_eq!(Value::parse_as(Type::F64, "2"), Ok(Value::F64(2.0)));
        assert_eq!(Value::parse_as(Type::I64, "-3"), Ok(Value::I64(-3)));
        assert_eq!(Value::parse_as(Type::Unit, "()"), Ok(Value::Unit));
        assert!(Value::parse_as(Type::I64, "2.5").is_err());
        assert!(Value::parse_as(Type::Bool, "yes").is_err());
    }

    #[test]
    fn bad_literals_are_refused() {
        for text in [
            "",
            "x",
            "1x",
            "--1",
            "99999999999999999999",
            "1.2.3",
            "true1",
        ] {
            assert_eq!(Value::parse_literal(text), None, "{text}");
        }
    }
}
