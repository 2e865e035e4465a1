//! The `x-request-id` every request carries upstream and back.
//!
//! A client's id is kept when it is a sane token (so callers can correlate
//! their own logs); anything else is replaced by a fresh UUIDv7.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The header name.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LEN: usize = 128;

/// The request's id: the client's when it is 1–128 characters of
/// `[A-Za-z0-9._:-]` and there is exactly one, otherwise a new UUIDv7.
pub fn take_or_make(headers: &HeaderMap) -> HeaderValue {
    let mut values = headers.get_all(&X_REQUEST_ID).iter();
    match (values.next(), values.next()) {
        (Some(value), None) if is_sane(value.as_bytes()) => value.clone(),
        _ => generate(),
    }
}

/// A fresh id.
pub fn generate() -> HeaderValue {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // A simple UUID is 32 hex digits, always a valid header value.
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn is_sane(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(&X_REQUEST_ID, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn a_sane_client_id_is_kept() {
        assert_eq!(take_or_make(&headers(&["abc-123_x.y:z"])), "abc-123_x.y:z");
    }

    #[test]
    fn an_unsafe_or_repeated_client_id_is_replaced() {
        for bad in [
            vec!["has space"],
            vec!["a\"b"],
            vec!["x"; 2],
            vec![&"a".repeat(129)],
        ] {
            let bad: Vec<&str> = bad.iter().map(|s| &**s).collect();
            let id = take_or_make(&headers(&bad));
            assert_eq!(id.len(), 32, "{bad:?} -> {id:?}");
            assert!(id.to_str().unwrap().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn a_missing_id_is_generated_fresh_each_time() {
        assert_ne!(
            take_or_make(&HeaderMap::new()),
            take_or_make(&HeaderMap::new())
        );
    }
}
