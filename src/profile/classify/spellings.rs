//! How every spelling of each built-in erasure path classifies: exactly the
//! canonical one is the erasure call, the others are refused or pass.

#![allow(clippy::unwrap_used)]

use http::{HeaderMap, Method};

use super::{classify, Classification};
use crate::profile::builtin;
use crate::profile::test_support::{head_with, headers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Erasure,
    Refused,
    NotErasure,
}
use Want::{Erasure as E, NotErasure as N, Refused as R};

/// Classifies each `METHOD path[?query] [header:value]` with `vendor`'s
/// profile and checks the outcome is `want`.
fn run(vendor: &str, want: Want, requests: &[&str]) {
    let profile = builtin(vendor).unwrap();
    for request in requests {
        let mut parts = request.split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            panic!("{request} is not `METHOD target`");
        };
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let header: Vec<(&str, &str)> = parts.filter_map(|h| h.split_once(':')).collect();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let headers = headers(&header);
        let head = super::RequestHead {
            query,
            ..head_with(&method, path, &headers)
        };
        let got = classify(&profile, &head);
        let kind = match got {
            Classification::Erasure(_) => E,
            Classification::Refused(_) => R,
            Classification::NotErasure => N,
        };
        assert_eq!(kind, want, "{vendor}: {request} → {got:?}");
    }
}

#[test]
fn seam_erasure_path_spellings_are_classified_or_refused() {
    run(
        "seam",
        E,
        &[
            "POST /customers/delete_data",
            "POST /customers/delete_data?",
            "DELETE /customers/delete_data?customer_keys=a",
            "GET /customers/delete_data?customer_keys=a&customer_keys=b",
            "DELETE /customers/delete_data",
            // repeated identity headers
            "POST /customers/delete_data seam-workspace:ws",
        ],
    );
    run(
        "seam",
        R,
        &[
            // other methods and method spelling
            "PUT /customers/delete_data",
            "PATCH /customers/delete_data",
            "HEAD /customers/delete_data",
            "OPTIONS /customers/delete_data",
            "post /customers/delete_data",
            "Delete /customers/delete_data?customer_keys=a",
            // percent-encoding anywhere
            "POST /customers/%64elete_data",
            "POST /%63ustomers/delete_data",
            "POST /customers%2Fdelete_data",
            "POST /customers%2fdelete_data",
            "POST /customers/delete%5Fdata",
            "POST /customers/delete_data%2F",
            "POST /customers/delete_data%252F",
            "POST /customers%252Fdelete_data",
            "POST /customers/delete_data%3Fx=1",
            "POST /customers/delete_data%23x",
            "POST /customers/delete_data%00",
            "POST /customers/delete_data%20",
            // slashes and dot segments
            "POST //customers/delete_data",
            "POST /customers//delete_data",
            "POST /customers/delete_data/",
            "POST /customers/delete_data//",
            "POST /customers/./delete_data",
            "POST /./customers/delete_data",
            "POST /customers/x/../delete_data",
            "POST /x/../customers/delete_data",
            "POST /../customers/delete_data",
            "POST /customers/%2e/delete_data",
            "POST /customers/x/%2e%2e/delete_data",
            "POST /customers/x/%2E%2E/delete_data",
            "POST /customers/delete_data/.",
            // backslashes, `;` parameters, case
            "POST /customers\\delete_data",
            "POST \\customers\\delete_data",
            "POST /customers%5Cdelete_data",
            "POST /customers/delete_data;jsessionid=1",
            "POST /customers;a=b/delete_data",
            "POST /customers/delete_data%3Bx",
            "POST /Customers/delete_data",
            "POST /CUSTOMERS/DELETE_DATA",
            "POST /customers/Delete_Data",
            "POST /cuſtomers/delete_data",
            "POST customers/delete_data",
            // method overrides, on any method
            "POST /customers/delete_data x-http-method-override:DELETE",
            "GET /customers/delete_data x-http-method:POST",
            "PUT /customers/delete_data x-method-override:POST",
            "POST /Customers/Delete_Data/ x-http-method-override:DELETE",
            "DELETE /customers/delete_data?_method=POST",
            "POST /customers/delete_data?_METHOD=DELETE",
            // erasure parameters in the query of the body-form call
            "POST /customers/delete_data?customer_keys=a",
            "POST /customers/delete_data?Customer_Keys=a",
            "POST /customers/delete_data?customer_keys%5B%5D=a",
            "POST /customers/delete_data?user_keys[0]=a",
            "POST /customers/delete_data?unrelated=1",
        ],
    );
    run(
        "seam",
        N,
        &[
            // not the erasure call
            "POST /customers/push_data",
            "POST /customers/delete_data_now",
            "POST /customers/delete_data/extra",
            "POST /customers",
            "GET /devices/list x-http-method-override:DELETE",
            "POST /customers/delete?customer_keys=a",
        ],
    );
}

#[test]
fn kore_erasure_path_spellings_are_classified_or_refused() {
    run(
        "kore",
        E,
        &[
            "DELETE /api/public/bot/eraseUsersData",
            "DELETE /api/public/bot/eraseUsersData?",
        ],
    );
    run(
        "kore",
        R,
        &[
            "POST /api/public/bot/eraseUsersData",
            "GET /api/public/bot/eraseUsersData",
            "PUT /api/public/bot/eraseUsersData",
            "delete /api/public/bot/eraseUsersData",
            "DELETE /api/public/bot/eraseusersdata",
            "DELETE /API/PUBLIC/BOT/ERASEUSERSDATA",
            "DELETE /api/public/bot/%65raseUsersData",
            "DELETE /api/public/bot%2FeraseUsersData",
            "DELETE /api/public/bot/eraseUsersData%2f",
            "DELETE /api/public//bot/eraseUsersData",
            "DELETE /api/public/bot/eraseUsersData/",
            "DELETE /api/public/./bot/eraseUsersData",
            "DELETE /api/private/../public/bot/eraseUsersData",
            "DELETE /api/private/%2e%2e/public/bot/eraseUsersData",
            "DELETE /api/public/bot/eraseUsersData;v=1",
            "DELETE /api\\public\\bot\\eraseUsersData",
            "DELETE /api/public/bot/eraseUsersData x-http-method-override:DELETE",
            "POST /api/public/bot/eraseUsersData x-http-method:DELETE",
            "POST /api/public/bot/eraseUsersData x-method-override:DELETE",
            "DELETE /api/public/bot/eraseUsersData?userIds=u-1",
            "DELETE /api/public/bot/eraseUsersData?removedatafromallbots=true",
            "DELETE /api/public/bot/eraseUsersData?x=1",
        ],
    );
    run(
        "kore",
        N,
        &[
            "GET /api/public/bot/eraseUsersDataStatus",
            "DELETE /api/public/bot/st-1",
            "GET /api/public/bots x-http-method-override:DELETE",
        ],
    );
}

#[test]
fn botpenguin_erasure_path_spellings_are_classified_or_refused() {
    run(
        "botpenguin",
        E,
        &[
            "DELETE /customer/abc",
            "DELETE /customer/a%40b.com",
            "DELETE /customer/ABC",
        ],
    );
    run(
        "botpenguin",
        R,
        &[
            // Only GET and HEAD pass on the erasure path (a POST body
            // can carry `_method=DELETE`).
            "PUT /customer/abc",
            "POST /customer/abc",
            "delete /customer/abc",
            "POST /customer/abc x-http-method-override:DELETE",
            "GET /customer/abc x-http-method:DELETE",
            "POST /customer/abc?_method=DELETE",
            "DELETE /customer/abc/",
            "DELETE /customer//abc",
            "DELETE //customer/abc",
            "DELETE /Customer/abc",
            "DELETE /CUSTOMER/abc",
            "DELETE /%63ustomer/abc",
            "DELETE /customer%2Fabc",
            "DELETE /customer/abc;x=1",
            "DELETE /customer;x=1/abc",
            "DELETE /customer/a%2Fb",
            "DELETE /customer/a%252Fb",
            "DELETE /customer/a%5Cb",
            "DELETE /customer/%2e%2e",
            "DELETE /customer/%2E",
            "DELETE /customer/%20",
            "DELETE /customer/x/../abc",
            "DELETE /customer/./abc",
            "DELETE /customer\\abc",
            "DELETE /customer/abc?customer_id=other",
            "DELETE /customer/abc?x=1",
        ],
    );
    run(
        "botpenguin",
        N,
        &[
            "GET /customer/abc",
            "HEAD /customer/abc",
            "GET /customer/abc?fields=name",
            "DELETE /customer",
            "DELETE /customer/abc/orders",
            "DELETE /customers/abc",
            "GET /bots/abc x-http-method-override:DELETE",
        ],
    );
}

/// One character of a fixed segment, spelled in a way some server reads
/// as that character.
fn spelling(c: char) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let upper = c.to_ascii_uppercase().to_string();
    prop_oneof![
        6 => Just(c.to_string()),
        1 => Just(upper),
        1 => Just(format!("%{:02X}", u32::from(c))),
        1 => Just(format!("%25{:02x}", u32::from(c))),
    ]
}

fn segment(text: &'static str) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    text.chars()
        .map(spelling)
        .collect::<Vec<_>>()
        .prop_map(|parts| parts.concat())
}

fn separator() -> impl proptest::strategy::Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "/", "/", "/", "/", "//", "/./", "/x/../", "\\", "%2F", "%2f", "%252F", "/%2e/", "/;p/",
    ])
}

proptest::proptest! {
    #[test]
    fn every_spelling_of_the_seam_path_is_the_erasure_call_only_when_canonical(
        lead in proptest::sample::select(vec!["/", "/", "/", "//", "/./", "\\", "/../"]),
        first in segment("customers"),
        sep in separator(),
        second in segment("delete_data"),
        tail in proptest::sample::select(vec!["", "", "", "/", ";p=1", "/.", "%2F", "%20"]),
    ) {
        let seam = builtin("seam").unwrap();
        let path = format!("{lead}{first}{sep}{second}{tail}");
        let headers = HeaderMap::new();
        let got = classify(&seam, &head_with(&Method::POST, &path, &headers));
        match got {
            Classification::Erasure(_) => proptest::prop_assert_eq!(path, "/customers/delete_data"),
            Classification::Refused(_) => proptest::prop_assert_ne!(path, "/customers/delete_data"),
            Classification::NotErasure => proptest::prop_assert!(false, "{path} passed as not erasure"),
        }
    }
}
