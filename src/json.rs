//! A JSON reader that refuses a repeated object key at any depth.
//! `serde_json` silently keeps the last of two equal keys, while an upstream
//! may keep the first: the gateway would then decide on one id and the vendor
//! erase another. This builds a [`serde_json::Value`] through a
//! [`DeserializeSeed`] that notes the first duplicate and stops.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictJsonError {
    /// An object repeats this key (after unescaping).
    DuplicateKey(String),
    /// Not JSON at all; serde_json's description (position and category,
    /// never the offending text).
    Syntax(String),
}

#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                let message = format!("duplicate key {key:?}");
                *self.duplicate.borrow_mut() = Some(key);
                return Err(de::Error::custom(message));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Parses `bytes` as one JSON value (surrounding whitespace allowed), refusing
/// duplicate keys at any depth. Nesting is bounded by serde_json's recursion
/// limit, so hostile depth is an error, not a stack overflow.
///
/// # Errors
/// [`StrictJsonError::DuplicateKey`] for the first repeated key,
/// [`StrictJsonError::Syntax`] for anything that is not a single JSON value.
pub fn from_slice(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = StrictSeed {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(err) => match duplicate.into_inner() {
            Some(key) => Err(StrictJsonError::DuplicateKey(key)),
            None => Err(StrictJsonError::Syntax(err.to_string())),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_reads_like_serde_json() {
        let text = br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}]}"#;
        assert_eq!(
            from_slice(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn a_duplicate_top_level_key_is_refused() {
        assert_eq!(
            from_slice(br#"{"a":1,"a":2}"#),
            Err(StrictJsonError::DuplicateKey("a".to_owned()))
        );
    }

    #[test]
    fn a_duplicate_key_deep_inside_an_array_is_refused() {
        assert_eq!(
            from_slice(br#"{"u":[{"x":"1"},{"c":"1","c":"2"}]}"#),
            Err(StrictJsonError::DuplicateKey("c".to_owned()))
        );
    }

    #[test]
    fn keys_that_are_equal_after_unescaping_are_duplicates() {
        assert_eq!(
            from_slice(br#"{"a":1,"\u0061":2}"#),
            Err(StrictJsonError::DuplicateKey("a".to_owned()))
        );
    }

    #[test]
    fn trailing_data_and_garbage_are_syntax_errors() {
        for bad in [
            &b"{} {}"[..],
            b"",
            b"{",
            b"[1,]",
            b"\xEF\xBB\xBF{}",
            b"{\"a\":1e999}",
        ] {
            assert!(
                matches!(from_slice(bad), Err(StrictJsonError::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(matches!(
            from_slice(deep.as_bytes()),
            Err(StrictJsonError::Syntax(_))
        ));
    }
}
