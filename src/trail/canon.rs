//! Canonical JSON ([`chain`](super::chain)'s form) written straight from a
//! `Serialize` type: object members sorted by key (bytewise), compact,
//! strings escaped as serde_json escapes them. One pass, no
//! `serde_json::Value` in between: the writer's cost per record.
//!
//! A record's top-level members are kept apart ([`Members`]) so that the
//! writer can merge its own (`seq`, `prev`, `time`, `replica`) into their
//! sorted places; everything below them is written as it is serialized.

use std::borrow::Cow;
use std::fmt::Display;
use std::ops::Range;

use serde::ser::{self, Serialize};

/// A value that cannot be written as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CanonError(String);

impl ser::Error for CanonError {
    fn custom<T: Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// A record's top-level members, sorted by key, each value in canonical
/// form.
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// The values' bytes, one after another.
    bytes: Vec<u8>,
    /// Key and range of `bytes`, sorted by key, keys unique.
    members: Vec<(Cow<'static, str>, Range<usize>)>,
}

impl Members {
    /// The members of `value`, which must serialize as a JSON object.
    ///
    /// # Errors
    /// `value` is not an object, has a key that is not a string, or its
    /// `Serialize` failed.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, CanonError> {
        value
            .serialize(Canon { out: None })?
            .ok_or_else(|| CanonError("a record must be a JSON object".into()))
    }

    /// Sets `key` to `value`, replacing a member of the same key.
    ///
    /// # Errors
    /// `value`'s `Serialize` failed.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CanonError> {
        let start = self.bytes.len();
        value.serialize(Canon {
            out: Some(&mut self.bytes),
        })?;
        let range = start..self.bytes.len();
        match self
            .members
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
        {
            Ok(at) => self.members[at].1 = range,
            Err(at) => self.members.insert(at, (Cow::Borrowed(key), range)),
        }
        Ok(())
    }

    /// About how many bytes [`write`](Self::write) makes of these members
    /// alone (each key quoted, a colon and a comma; keys needing escapes
    /// take a little more).
    #[must_use]
    pub fn approximate_len(&self) -> usize {
        self.bytes.len()
            + self
                .members
                .iter()
                .map(|(key, _)| key.len() + 4)
                .sum::<usize>()
    }

    /// Writes the object: these members but those `envelope` names, merged
    /// with `envelope` (already JSON, sorted by key), and none named `skip`.
    pub fn write(&self, envelope: &[(&str, &[u8])], skip: Option<&str>, out: &mut Vec<u8>) {
        debug_assert!(envelope.windows(2).all(|w| w[0].0 < w[1].0));
        let own = self.members.iter().filter(|(key, _)| {
            skip != Some(key.as_ref()) && envelope.iter().all(|(named, _)| *named != key.as_ref())
        });
        let mut own = own.peekable();
        let mut envelope = envelope.iter().peekable();
        out.push(b'{');
        let mut first = true;
        loop {
            let (key, value) = match (own.peek(), envelope.peek()) {
                (Some((k, range)), Some((e, _))) if k.as_bytes() < e.as_bytes() => {
                    own.next();
                    (k.as_ref(), &self.bytes[range.clone()])
                }
                (Some(_), Some((e, value))) | (None, Some((e, value))) => {
                    envelope.next();
                    (*e, *value)
                }
                (Some((k, range)), None) => {
                    own.next();
                    (k.as_ref(), &self.bytes[range.clone()])
                }
                (None, None) => break,
            };
            if !first {
                out.push(b',');
            }
            first = false;
            write_key(key, out);
            out.extend_from_slice(value);
        }
        out.push(b'}');
    }
}

/// A JSON object's members: always there, its keys being strings.
impl From<&serde_json::Map<String, serde_json::Value>> for Members {
    fn from(map: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self::of(map).unwrap_or_default()
    }
}

fn write_key(key: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
}

/// Sorts an object's members by key; of a repeated key the last is kept
/// (as a JSON object built member by member keeps it).
fn sort_members(members: &mut Vec<(Cow<'static, str>, Range<usize>)>) {
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut at = members.len();
    while at > 1 {
        at -= 1;
        if members[at - 1].0 == members[at].0 {
            members.remove(at - 1);
        }
    }
}

/// Writes one value's canonical bytes into `out`; with no `out` (the top
/// level) only an object is accepted, and its members are returned.
struct Canon<'a> {
    out: Option<&'a mut Vec<u8>>,
}

impl<'a> Canon<'a> {
    fn out(self) -> Result<&'a mut Vec<u8>, CanonError> {
        self.out
            .ok_or_else(|| CanonError("a record must be a JSON object".into()))
    }

    fn scalar<T: Serialize + ?Sized>(self, value: &T) -> Result<Option<Members>, CanonError> {
        serde_json::to_writer(self.out()?, value).map_err(ser::Error::custom)?;
        Ok(None)
    }

    fn object(self, suffix: &'static [u8]) -> Object<'a> {
        Object {
            out: self.out,
            members: Members::default(),
            key: None,
            suffix,
        }
    }

    /// Opens `{"variant":` for an enum's non-unit variant.
    fn variant(self, variant: &'static str) -> Result<&'a mut Vec<u8>, CanonError> {
        let out = self.out()?;
        out.push(b'{');
        write_key(variant, out);
        Ok(out)
    }
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = Option<Members>;
    type Error = CanonError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_i8(self, v: i8) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_i16(self, v: i16) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_i32(self, v: i32) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_i64(self, v: i64) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_i128(self, v: i128) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_u8(self, v: u8) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_u16(self, v: u16) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_u32(self, v: u32) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_u64(self, v: u64) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_u128(self, v: u128) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_f32(self, v: f32) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_f64(self, v: f64) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_char(self, v: char) -> Result<Self::Ok, CanonError> {
        self.scalar(&v)
    }
    fn serialize_str(self, v: &str) -> Result<Self::Ok, CanonError> {
        self.scalar(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Self::Ok, CanonError> {
        self.scalar(v)
    }
    fn serialize_none(self) -> Result<Self::Ok, CanonError> {
        self.scalar(&())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok, CanonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Self::Ok, CanonError> {
        self.scalar(&())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Self::Ok, CanonError> {
        self.scalar(&())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, CanonError> {
        self.scalar(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Self::Ok, CanonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Self::Ok, CanonError> {
        let out = self.variant(variant)?;
        value.serialize(Canon {
            out: Some(&mut *out),
        })?;
        out.push(b'}');
        Ok(None)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, CanonError> {
        Seq::open(self.out()?, b"]")
    }
    fn serialize_tuple(self, _len: usize) -> Result<Seq<'a>, CanonError> {
        Seq::open(self.out()?, b"]")
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, CanonError> {
        Seq::open(self.out()?, b"]")
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, CanonError> {
        Seq::open(self.variant(variant)?, b"]}")
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'a>, CanonError> {
        Ok(self.object(b""))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Object<'a>, CanonError> {
        Ok(self.object(b""))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Object<'a>, CanonError> {
        let out = self.variant(variant)?;
        Ok(Canon { out: Some(out) }.object(b"}"))
    }
}

/// An array being written; `suffix` closes it (and an enum variant's
/// object around it).
struct Seq<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    suffix: &'static [u8],
}

impl<'a> Seq<'a> {
    fn open(out: &'a mut Vec<u8>, suffix: &'static [u8]) -> Result<Self, CanonError> {
        out.push(b'[');
        Ok(Self {
            out,
            first: true,
            suffix,
        })
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(Canon {
            out: Some(&mut *self.out),
        })?;
        Ok(())
    }

    fn close(self) -> Result<Option<Members>, CanonError> {
        self.out.extend_from_slice(self.suffix);
        Ok(None)
    }
}

/// The four array-like serde traits, all [`Seq::element`] and [`Seq::close`].
macro_rules! seq_traits {
    ($($name:ident :: $add:ident),*) => {$(
        impl ser::$name for Seq<'_> {
            type Ok = Option<Members>;
            type Error = CanonError;
            fn $add<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
                self.element(value)
            }
            fn end(self) -> Result<Self::Ok, CanonError> {
                self.close()
            }
        }
    )*};
}

seq_traits!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// An object being written: its members collected, then written sorted
/// into `out` (or, at the top level, handed back as [`Members`]).
struct Object<'a> {
    out: Option<&'a mut Vec<u8>>,
    members: Members,
    key: Option<String>,
    suffix: &'static [u8],
}

impl Object<'_> {
    fn member<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), CanonError> {
        let start = self.members.bytes.len();
        value.serialize(Canon {
            out: Some(&mut self.members.bytes),
        })?;
        let range = start..self.members.bytes.len();
        self.members.members.push((key, range));
        Ok(())
    }

    fn close(mut self) -> Result<Option<Members>, CanonError> {
        sort_members(&mut self.members.members);
        match self.out {
            None => Ok(Some(self.members)),
            Some(out) => {
                self.members.write(&[], None, out);
                out.extend_from_slice(self.suffix);
                Ok(None)
            }
        }
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = Option<Members>;
    type Error = CanonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonError> {
        // As serde_json reads keys: strings, and numbers and booleans as
        // their text.
        self.key = Some(match serde_json::to_value(key) {
            Ok(serde_json::Value::String(key)) => key,
            Ok(key @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                key.to_string()
            }
            _ => return Err(CanonError("an object key must be a string".into())),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| CanonError("a value without its key".into()))?;
        self.member(Cow::Owned(key), value)
    }
    fn end(self) -> Result<Self::Ok, CanonError> {
        self.close()
    }
}

/// The two struct-like serde traits, both [`Object::member`].
macro_rules! struct_traits {
    ($($name:ident),*) => {$(
        impl ser::$name for Object<'_> {
            type Ok = Option<Members>;
            type Error = CanonError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), CanonError> {
                self.member(Cow::Borrowed(key), value)
            }
            fn end(self) -> Result<Self::Ok, CanonError> {
                self.close()
            }
        }
    )*};
}

struct_traits!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn direct(value: &impl Serialize) -> Vec<u8> {
        let mut out = Vec::new();
        Members::of(value)
            .unwrap()
            .write(&[], Some("hash"), &mut out);
        out
    }

    /// The canonical form written from a `Value`, member by member: the
    /// reference the one-pass writer is held to.
    fn through_value(value: &impl Serialize) -> Vec<u8> {
        let Value::Object(map) = serde_json::to_value(value).unwrap() else {
            panic!("an object")
        };
        let mut out = Vec::new();
        reference_object(&map, |key| key != "hash", &mut out);
        out
    }

    /// Writes `map` with its members in bytewise key order (and those of every
    /// object inside), keeping the members whose key `keep` accepts. (A
    /// dependency turns on serde_json's `preserve_order`, so maps keep insertion
    /// order and must be written sorted.)
    fn reference_object(map: &Map<String, Value>, keep: impl Fn(&str) -> bool, out: &mut Vec<u8>) {
        let mut members: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| keep(k)).collect();
        members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out.push(b'{');
        for (n, (key, value)) in members.into_iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, key.as_str());
            out.push(b':');
            reference_value(value, out);
        }
        out.push(b'}');
    }

    fn reference_value(value: &Value, out: &mut Vec<u8>) {
        match value {
            Value::Object(map) => reference_object(map, |_| true, out),
            Value::Array(items) => {
                out.push(b'[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    reference_value(item, out);
                }
                out.push(b']');
            }
            scalar => reference_scalar(scalar, out),
        }
    }

    fn reference_scalar(value: &Value, out: &mut Vec<u8>) {
        // Writing a string, number, bool or null into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }

    #[derive(serde::Serialize)]
    enum Shape {
        Unit,
        New(u8),
        Pair(u8, &'static str),
        Named { z: bool, a: Option<u8> },
    }

    #[derive(serde::Serialize)]
    struct Sample {
        zeta: &'static str,
        alpha: Vec<Shape>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        map: std::collections::HashMap<String, i64>,
        value: Value,
        float: f64,
        nan: f64,
        hash: &'static str,
    }

    #[test]
    fn it_writes_the_bytes_of_the_value_path_without_the_hash() {
        let sample = Sample {
            zeta: "ü \"quoted\" \u{1}\n",
            alpha: vec![
                Shape::Unit,
                Shape::New(3),
                Shape::Pair(1, "x"),
                Shape::Named { z: true, a: None },
            ],
            skipped: None,
            map: [
                ("b".to_owned(), -2),
                ("a".to_owned(), 1),
                ("B".to_owned(), 0),
            ]
            .into_iter()
            .collect(),
            value: json!({"y": [{"d": 1, "c": {"f": null, "e": "é"}}], "x": 1.5, "hash": 1}),
            float: 0.1,
            nan: f64::NAN,
            hash: "dropped at the top only",
        };
        assert_eq!(
            String::from_utf8(direct(&sample)).unwrap(),
            String::from_utf8(through_value(&sample)).unwrap()
        );
    }

    #[test]
    fn envelope_members_merge_in_order_and_replace_the_records_own() {
        let mut record = Map::new();
        for key in ["zz", "seq", "b", "kind", "hash", "a"] {
            record.insert(key.into(), json!(key));
        }
        let mut members = Members::of(&record).unwrap();
        members.insert("kind", "decision").unwrap();
        let mut out = Vec::new();
        members.write(&[("prev", b"\"p\""), ("seq", b"7")], Some("hash"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"a","b":"b","kind":"decision","prev":"p","seq":7,"zz":"zz"}"#
        );
    }

    #[test]
    fn only_an_object_is_a_record() {
        assert!(Members::of(&[1, 2]).is_err());
        assert!(Members::of("text").is_err());
        let keyed: std::collections::BTreeMap<u8, u8> = [(1, 2)].into_iter().collect();
        // serde_json writes integer keys as strings; so does this.
        assert_eq!(direct(&keyed), br#"{"1":2}"#);
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = "[a-zA-Z_\"\\\\\u{1}é😀]{0,6}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            key.prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::vec((key, inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, ..Default::default() })]

        /// Any object: the same bytes as the `Value` path.
        #[test]
        fn any_object_is_written_as_the_value_path_writes_it(
            members in proptest::collection::vec(("[a-z_\"é]{0,5}", json()), 0..8)
        ) {
            let map: Map<String, Value> = members.into_iter().collect();
            proptest::prop_assert_eq!(direct(&map), through_value(&map));
        }
    }
}
