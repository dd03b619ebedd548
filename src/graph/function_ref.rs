//! `FunctionRef`: a function named by id or by qualified name, and the one
//! parser every tool, edit op and stored log entry goes through.
//!
//! What a reference may be, everywhere:
//! - a number (`7`), or its digits as a string (`"7"`), or `"#7"`: the id;
//! - `"module::name"` (one or more module segments): the qualified name.
//!
//! Nothing else: no sign, no spaces, no second `#`, no empty string. This
//! file does not look names up; `Program::lookup` does.

use std::fmt;
use std::str::FromStr;

use super::function::QualifiedName;
use super::ids::FunctionId;

/// A function named by id or by qualified name. Every tool accepts either.
///
/// It serialises as the id (a JSON number) or the name (a JSON string);
/// that is also its form in the commit log, pinned by golden files.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FunctionRef {
    Id(FunctionId),
    Name(QualifiedName),
}

/// Why a string is not a function reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a function: expected a qualified name like `module::name` or an id like `7` or `#7` ({reason})"
)]
pub struct FunctionRefError {
    pub text: String,
    pub reason: String,
}

impl FunctionRef {
    /// Parses a reference as written by a client: see the module docs.
    pub fn parse(text: &str) -> Result<FunctionRef, FunctionRefError> {
        let error = |reason: &str| FunctionRefError {
            text: text.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(error("it is empty"));
        }
        let digits = text.strip_prefix('#').unwrap_or(text);
        if digits.starts_with(|c: char| c.is_ascii_digit()) || text.starts_with('#') {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error("an id is digits only"));
            }
            return digits
                .parse::<u64>()
                .map(|n| FunctionRef::Id(FunctionId(n)))
                .map_err(|_| error("the id is too large"));
        }
        QualifiedName::new(text)
            .map(FunctionRef::Name)
            .map_err(|reason| error(&reason))
    }

    /// The id, if this names one.
    pub fn id(&self) -> Option<FunctionId> {
        match self {
            FunctionRef::Id(id) => Some(*id),
            FunctionRef::Name(_) => None,
        }
    }
}

impl FromStr for FunctionRef {
    type Err = FunctionRefError;

    fn from_str(text: &str) -> Result<FunctionRef, FunctionRefError> {
        FunctionRef::parse(text)
    }
}

impl From<FunctionId> for FunctionRef {
    fn from(id: FunctionId) -> FunctionRef {
        FunctionRef::Id(id)
    }
}

impl From<QualifiedName> for FunctionRef {
    fn from(name: QualifiedName) -> FunctionRef {
        FunctionRef::Name(name)
    }
}

impl fmt::Display for FunctionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FunctionRef::Id(id) => write!(f, "{id}"),
            FunctionRef::Name(name) => write!(f, "{name}"),
        }
    }
}

impl serde::Serialize for FunctionRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FunctionRef::Id(id) => s.serialize_u64(id.0),
            FunctionRef::Name(name) => s.serialize_str(name.as_str()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for FunctionRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = FunctionRef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a function id (a non-negative integer) or a name like \"module::name\"",
                )
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<FunctionRef, E> {
                Ok(FunctionRef::Id(FunctionId(n)))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<FunctionRef, E> {
                u64::try_from(n)
                    .map(|n| FunctionRef::Id(FunctionId(n)))
                    .map_err(|_| E::custom(format!("a function id is not negative, got {n}")))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<FunctionRef, E> {
                FunctionRef::parse(text).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> FunctionRef {
        FunctionRef::Name(QualifiedName::new(text).unwrap())
    }

    /// One row per spelling: what it parses to, or the reason it is refused.
    macro_rules! cases {
        ($($test:ident: $text:expr => $expected:expr;)*) => {$(
            #[test]
            fn $test() {
                let got = FunctionRef::parse($text).map_err(|e| e.reason);
                assert_eq!(got, $expected, "parsing {:?}", $text);
            }
        )*};
    }

    cases! {
        digits: "7" => Ok(FunctionRef::Id(FunctionId(7)));
        hash_digits: "#7" => Ok(FunctionRef::Id(FunctionId(7)));
        zero: "0" => Ok(FunctionRef::Id(FunctionId(0)));
        largest_id: "18446744073709551615" => Ok(FunctionRef::Id(FunctionId(u64::MAX)));
        qualified: "math::fib" => Ok(name("math::fib"));
        nested_module: "a::b::c" => Ok(name("a::b::c"));
        double_hash: "##7" => Err("an id is digits only".into());
        bare_hash: "#" => Err("an id is digits only".into());
        plus_sign: "+7" => Err("`+7` is not a qualified name: expected `module::name`".into());
        digits_then_text: "7a" => Err("an id is digits only".into());
        hash_then_name: "#math::fib" => Err("an id is digits only".into());
        too_large: "18446744073709551616" => Err("the id is too large".into());
        empty: "" => Err("it is empty".into());
        unqualified: "fib" => Err("`fib` is not a qualified name: expected `module::name`".into());
        bad_segment: "math::1fib" => Err("`math::1fib` is not a qualified name: `1fib` is not an identifier".into());
        space: " math::fib" => Err("` math::fib` is not a qualified name: ` math` is not an identifier".into());
    }

    #[test]
    fn serde_forms_are_number_and_string() {
        let id = FunctionRef::Id(FunctionId(7));
        assert_eq!(serde_json::to_string(&id).unwrap(), "7");
        assert_eq!(serde_json::to_string(&name("m::f")).unwrap(), "\"m::f\"");
        for (json, expected) in [("7", id.clone()), ("\"7\"", id.clone()), ("\"#7\"", id)] {
            assert_eq!(serde_json::from_str::<FunctionRef>(json).unwrap(), expected);
        }
        assert_eq!(
            serde_json::from_str::<FunctionRef>("\"m::f\"").unwrap(),
            name("m::f")
        );
        for bad in ["-1", "\"##7\"", "\"\"", "true", "1.5", "null"] {
            assert!(
                serde_json::from_str::<FunctionRef>(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        for r in [FunctionRef::Id(FunctionId(42)), name("a::b::c")] {
            assert_eq!(FunctionRef::parse(&r.to_string()).unwrap(), r);
        }
    }
}
