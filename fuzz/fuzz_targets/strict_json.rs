//! The strict JSON reader against serde_json and an independent duplicate
//! finder.
//!
//! An oracle reads the same bytes with serde_json into a tree that keeps
//! every object member (`Vec<(String, Tree)>`), so it sees duplicates that
//! serde_json's `Value` folds away. Then:
//! - not JSON to serde_json ⇒ an error from the strict reader;
//! - JSON without a repeated key ⇒ the strict reader gives serde_json's value;
//! - JSON with a repeated key ⇒ `DuplicateKey` naming the first one (in the
//!   order the strict reader meets them: document order, depth first);
//! - `DuplicateKey` from the strict reader ⇒ the key really repeats, or the
//!   input is broken later on (the reader stops at the first duplicate);
//! - a value the strict reader accepts re-serialises and reads back equal.

#![no_main]

use std::fmt;

use erasure_gateway::json::{from_slice, StrictJsonError};
use libfuzzer_sys::fuzz_target;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value with every object member kept, in order.
enum Tree {
    Scalar(Value),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Tree::Scalar(Value::Number(n)))
            .ok_or_else(|| E::custom("not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::String(v.to_owned())))
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Tree>()? {
            members.push((key, value));
        }
        Ok(Tree::Object(members))
    }
}

impl Tree {
    /// The first key that repeats one before it in the same object, in the
    /// order a streaming reader meets it.
    fn first_duplicate(&self) -> Option<&str> {
        match self {
            Self::Scalar(_) => None,
            Self::Array(items) => items.iter().find_map(Self::first_duplicate),
            Self::Object(members) => members.iter().enumerate().find_map(|(i, (key, value))| {
                if members[..i].iter().any(|(k, _)| k == key) {
                    Some(key.as_str())
                } else {
                    value.first_duplicate()
                }
            }),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Self::Scalar(value) => value.clone(),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
            Self::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let strict = from_slice(data);
    let plain = serde_json::from_slice::<Value>(data);
    let tree = serde_json::from_slice::<Tree>(data);
    assert_eq!(
        plain.is_ok(),
        tree.is_ok(),
        "the oracle disagrees with serde_json"
    );
    match (&strict, &tree) {
        (Ok(value), Ok(tree)) => {
            assert_eq!(tree.first_duplicate(), None, "a duplicate key was accepted");
            assert_eq!(Some(value), plain.as_ref().ok(), "differs from serde_json");
            assert_eq!(value, &tree.to_value());
            let text = serde_json::to_vec(value).expect("a Value serialises");
            assert_eq!(from_slice(&text).as_ref(), Ok(value), "no round trip");
        }
        (Ok(_), Err(e)) => panic!("the strict reader accepts what serde_json refuses: {e}"),
        (Err(StrictJsonError::DuplicateKey(key)), Ok(tree)) => {
            assert_eq!(
                tree.first_duplicate(),
                Some(key.as_str()),
                "wrong duplicate"
            );
        }
        (Err(StrictJsonError::DuplicateKey(_)), Err(_)) => {}
        (Err(StrictJsonError::Syntax(detail)), Ok(tree)) => {
            assert!(
                tree.first_duplicate().is_none(),
                "a duplicate key reported as a syntax error: {detail}"
            );
            panic!("the strict reader refuses JSON without a duplicate key: {detail}");
        }
        (Err(StrictJsonError::Syntax(_)), Err(_)) => {}
    }
});
