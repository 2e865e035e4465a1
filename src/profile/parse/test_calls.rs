//! Test calls: a request classified by a built-in profile, then parsed.

#![allow(clippy::unwrap_used)]

use http::{HeaderMap, Method};

use super::{parse, ErasureRequest, ParseError, Target};
use crate::profile::definition::IdForm;
use crate::profile::test_support::headers;
use crate::profile::{builtin, classify, Classification, RequestHead};

/// A request to one built-in vendor.
pub(super) struct Call {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

impl Call {
    pub(super) fn new(
        method: &str,
        path: &str,
        query: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> Self {
        Self {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            headers: headers(pairs),
        }
    }

    pub(super) fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            has_body: false,
        }
    }

    /// Classifies (must be an erasure call) and parses.
    pub(super) fn parse(&self, vendor: &str, body: &[u8]) -> Result<ErasureRequest, ParseError> {
        let profile = builtin(vendor).unwrap();
        let head = self.head();
        match classify(&profile, &head) {
            Classification::Erasure(call) => parse(&profile, &call, &head, body),
            other => panic!(
                "{} {} is not an erasure call: {other:?}",
                self.method, self.path
            ),
        }
    }
}

pub(super) const JSON: (&str, &str) = ("content-type", "application/json");

pub(super) fn seam_post(body: &str) -> Result<ErasureRequest, ParseError> {
    Call::new("POST", "/customers/delete_data", None, &[JSON]).parse("seam", body.as_bytes())
}

pub(super) fn seam_delete(query: &str, body: &str) -> Result<ErasureRequest, ParseError> {
    Call::new("DELETE", "/customers/delete_data", Some(query), &[]).parse("seam", body.as_bytes())
}

pub(super) fn kore(body: &str) -> Result<ErasureRequest, ParseError> {
    Call::new("DELETE", "/api/public/bot/eraseUsersData", None, &[JSON])
        .parse("kore", body.as_bytes())
}

pub(super) fn target(entity_type: &str, id: &str) -> Target {
    let id_form = if entity_type == "Kore::User" {
        IdForm::EmailCasefold
    } else {
        IdForm::Exact
    };
    Target {
        entity_type: entity_type.to_owned(),
        id: id.to_owned(),
        id_form,
    }
}
