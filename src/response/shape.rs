//! A vendor's error response as a JSON template, so a refusal reaches the
//! vendor's SDK as that SDK's own API error. Placeholders are substituted into
//! a [`serde_json::Value`] and then serialised: a message can never break out
//! of its string.

use http::header::HeaderName;
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The placeholders a template may use. `{status}` alone as a string leaf
/// becomes a JSON number; inside a longer string it is its decimal text.
const PLACEHOLDERS: [&str; 4] = ["status", "type", "message", "request_id"];

/// The shape of a vendor's error response.
///
/// ```toml
/// [error]
/// content_type = "application/json"
/// request_id_header = "seam-request-id"
/// body = { error = { type = "{type}", message = "{message}", request_id = "{request_id}" } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorShape {
    /// The `content-type` of the error response.
    pub content_type: String,
    /// A response header that should carry the request id as well, because
    /// the vendor's SDKs read it from there (Seam: `seam-request-id`).
    #[serde(default)]
    pub request_id_header: Option<String>,
    /// The JSON template; string leaves may hold `{status}`, `{type}`,
    /// `{message}` and `{request_id}`.
    pub body: Value,
}

struct Substitution<'a> {
    status: u16,
    error_type: &'a str,
    message: &'a str,
    request_id: &'a str,
}

impl Substitution<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "status" => Some(self.status.to_string()),
            "type" => Some(self.error_type.to_owned()),
            "message" => Some(self.message.to_owned()),
            "request_id" => Some(self.request_id.to_owned()),
            _ => None,
        }
    }

    /// One left-to-right pass: replaced text is never scanned again, so a
    /// message containing `{type}` stays literal.
    fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (before, from_brace) = rest.split_at(open);
            out.push_str(before);
            let replaced = from_brace.find('}').and_then(|close| {
                let name = from_brace.get(1..close)?;
                Some((self.lookup(name)?, close))
            });
            match replaced {
                Some((text, close)) => {
                    out.push_str(&text);
                    rest = from_brace.get(close + 1..).unwrap_or_default();
                }
                None => {
                    out.push('{');
                    rest = from_brace.get(1..).unwrap_or_default();
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn apply(&self, template: &Value) -> Value {
        match template {
            Value::String(s) if s == "{status}" => Value::Number(self.status.into()),
            Value::String(s) => Value::String(self.fill(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.apply(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn placeholders_in(template: &Value, found: &mut Vec<String>) {
    match template {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(open) = rest.find('{') {
                let after = rest.get(open + 1..).unwrap_or_default();
                match after.find('}') {
                    Some(close) => {
                        let name = after.get(..close).unwrap_or_default();
                        if !name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        {
                            found.push(name.to_owned());
                        }
                        rest = after;
                    }
                    None => break,
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| placeholders_in(v, found)),
        Value::Object(map) => map.values().for_each(|v| placeholders_in(v, found)),
        _ => {}
    }
}

impl ErrorShape {
    /// Renders the error response body for one refusal and returns it with
    /// its content type.
    #[must_use]
    pub fn render(
        &self,
        status: u16,
        error_type: &str,
        message: &str,
        request_id: &str,
    ) -> (&str, Vec<u8>) {
        let filled = Substitution {
            status,
            error_type,
            message,
            request_id,
        }
        .apply(&self.body);
        // Serialising a `Value` cannot fail (its keys are strings); the
        // fallback only keeps this function total.
        let bytes = serde_json::to_vec(&filled).unwrap_or_else(|_| b"{}".to_vec());
        (self.content_type.as_str(), bytes)
    }

    /// Checks the template and headers.
    ///
    /// # Errors
    /// A reason naming the key (`content_type`, `request_id_header`, `body`)
    /// when the content type is not a header value, the header name is
    /// invalid, the body is not an object or array, it never uses
    /// `{message}`, or it uses an unknown placeholder.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if HeaderValue::from_str(&self.content_type).is_err() || self.content_type.is_empty() {
            return Err(("content_type", "must be a valid header value".to_owned()));
        }
        if let Some(name) = &self.request_id_header {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err((
                    "request_id_header",
                    "must be a valid header name".to_owned(),
                ));
            }
        }
        if !(self.body.is_object() || self.body.is_array()) {
            return Err(("body", "must be a table or an array".to_owned()));
        }
        let mut found = Vec::new();
        placeholders_in(&self.body, &mut found);
        if let Some(unknown) = found.iter().find(|p| !PLACEHOLDERS.contains(&p.as_str())) {
            return Err((
                "body",
                format!("unknown placeholder `{{{unknown}}}` (known: status, type, message, request_id)"),
            ));
        }
        if !found.iter().any(|p| p == "message") {
            return Err(("body", "must use `{message}` somewhere".to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::builtin;

    fn render(vendor: &str) -> (String, Value) {
        let profile = builtin(vendor).unwrap();
        let (ct, body) =
            profile
                .error
                .render(403, "forbidden", "erasure denied by policy", "req-1");
        (ct.to_owned(), serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn seam_errors_render_in_the_shape_seam_sdks_parse() {
        assert_eq!(
            render("seam"),
            (
                "application/json".to_owned(),
                serde_json::json!({"error": {
                    "type": "forbidden",
                    "message": "erasure denied by policy",
                    "request_id": "req-1"
                }})
            )
        );
        let seam = builtin("seam").unwrap();
        assert_eq!(
            seam.error.request_id_header.as_deref(),
            Some("seam-request-id")
        );
    }

    #[test]
    fn kore_errors_render_as_an_errors_array_with_a_numeric_code() {
        assert_eq!(
            render("kore"),
            (
                "application/json".to_owned(),
                serde_json::json!({"errors": [{"msg": "erasure denied by policy", "code": 403}]})
            )
        );
    }

    #[test]
    fn botpenguin_errors_render_as_success_false_with_the_status_code() {
        assert_eq!(
            render("botpenguin"),
            (
                "application/json".to_owned(),
                serde_json::json!({"success": false, "message": "erasure denied by policy", "code": 403})
            )
        );
    }

    #[test]
    fn hostile_messages_stay_inside_their_json_string() {
        let seam = builtin("seam").unwrap();
        let message = "\"},\"injected\":{\"x\":\"{type}\n";
        let (_, body) = seam.error.render(400, "invalid_input", message, "r");
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed["error"]["message"],
            Value::String(message.to_owned())
        );
        assert_eq!(parsed.as_object().unwrap().len(), 1);
    }

    #[test]
    fn placeholders_inside_longer_strings_are_filled_once() {
        let shape = ErrorShape {
            content_type: "application/json".to_owned(),
            request_id_header: None,
            body: serde_json::json!({"m": "{status}: {message} [{request_id}] {unknown} {"}),
        };
        let (_, body) = shape.render(503, "t", "a {message}", "r1");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"m":"503: a {message} [r1] {unknown} {"}"#
        );
    }

    #[test]
    fn templates_without_message_or_with_unknown_placeholders_are_invalid() {
        let mut shape = ErrorShape {
            content_type: "application/json".to_owned(),
            request_id_header: None,
            body: serde_json::json!({"m": "{status}"}),
        };
        assert_eq!(shape.validate().unwrap_err().0, "body");
        shape.body = serde_json::json!({"m": "{message}", "x": "{secret}"});
        assert!(shape.validate().unwrap_err().1.contains("{secret}"));
        shape.body = serde_json::json!("{message}");
        assert_eq!(shape.validate().unwrap_err().0, "body");
        shape.body = serde_json::json!({"m": "{message}"});
        shape.content_type = "application/json\n".to_owned();
        assert_eq!(shape.validate().unwrap_err().0, "content_type");
    }
}
