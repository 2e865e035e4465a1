//! Requests described in a file (policy tests, `explain`, `/v1/authorize`)
//! and decided offline through the live path: classify → parse → identify →
//! entities → Cedar. Nothing is forwarded or recorded.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authz::{PolicySnapshot, TargetDecision};
use crate::conn::{ClientCert, ConnInfo};
use crate::identity::{Caller, CallerSource};
use crate::pipeline::evaluate::{Evaluator, Given};
use crate::profile::{self, Classification, RequestHead, VendorProfile};

/// An HTTP call as a vendor would receive it, described in TOML or JSON.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DescribedRequest {
    /// The vendor profile (`seam`, `kore`, `botpenguin`, or a `[[profile]]`).
    pub vendor: String,
    /// The HTTP method.
    pub method: String,
    /// The path as the vendor sees it (without the gateway's route prefix),
    /// optionally with `?query`.
    pub path: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (sent as `application/json` unless `headers` say else).
    #[serde(default)]
    pub json: Option<Value>,
    /// A raw body, when it must be exactly these bytes (or malformed).
    #[serde(default)]
    pub body: Option<String>,
    /// Decide as this caller instead of identifying one from the
    /// credential (so tests need no secret).
    #[serde(default)]
    pub caller: Option<GivenCaller>,
    /// The client's address.
    #[serde(default = "default_client_ip")]
    pub client_ip: IpAddr,
    /// The subject of a verified client certificate, if the client had one
    /// (`context.client_cert` is true exactly when this is set).
    #[serde(default)]
    pub client_cert_subject: Option<String>,
    /// Extra Cedar entities for this request only.
    #[serde(default)]
    pub entities: Vec<Value>,
    /// `context.erasures_in_window`: targets the caller erased through this
    /// vendor in the current budget window.
    #[serde(default)]
    pub erasures_in_window: u64,
    /// `context.calls_in_window`: erasure calls in the current window.
    #[serde(default)]
    pub calls_in_window: u64,
}

fn default_client_ip() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// A caller named directly in a described request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GivenCaller {
    /// `Gateway::Caller` id.
    pub id: String,
    /// `Gateway::Role` ids.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A described request that cannot be turned into an HTTP request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DescribeError(pub String);

/// What the gateway would do with a described request, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// `allow`, `deny`, or `pass-through` (not an erasure call).
    pub decision: String,
    /// The caller the decision was made for.
    pub caller: Option<Caller>,
    /// The credential's kind and fingerprint.
    pub credential: Option<Value>,
    /// Per target: decision, determining policies, errors.
    pub targets: Vec<TargetDecision>,
    /// Why the call is denied.
    pub reasons: Vec<String>,
    /// The refusal a client would get: status, type, message.
    pub refusal: Option<Value>,
    /// The Cedar context the policies saw.
    pub context: Option<Value>,
    /// The policy-set version used.
    pub policy_version: String,
}

impl Explanation {
    /// The determining policy ids of all targets, sorted, deduplicated.
    pub fn policies(&self) -> Vec<String> {
        super::policy_union(self.targets.iter().flat_map(|t| &t.policies))
    }

    /// A readable account, for `explain`.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "decision: {}", self.decision);
        if let Some(caller) = &self.caller {
            let _ = writeln!(
                out,
                "caller:   {} (roles: {})",
                caller.id,
                caller.roles.join(", ")
            );
        }
        if let Some(credential) = &self.credential {
            let kind = credential["kind"].as_str().unwrap_or_default();
            let fingerprint = credential["fingerprint"].as_str().unwrap_or_default();
            let line = format!("credential: {kind} {fingerprint}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for t in &self.targets {
            let _ = writeln!(
                out,
                "  {} {}::{:?}  policies: [{}]{}",
                if t.allowed { "allow" } else { "deny " },
                t.entity_type,
                t.id,
                t.policies.join(", "),
                if t.errors.is_empty() {
                    String::new()
                } else {
                    format!("  errors: {}", t.errors.join("; "))
                }
            );
        }
        for reason in &self.reasons {
            let _ = writeln!(out, "reason:   {reason}");
        }
        if let Some(refusal) = &self.refusal {
            let _ = writeln!(
                out,
                "answer:   {} {}: {}",
                refusal["status"],
                refusal["type"].as_str().unwrap_or_default(),
                refusal["message"].as_str().unwrap_or_default()
            );
        }
        if let Some(context) = &self.context {
            let pretty = serde_json::to_string_pretty(context).unwrap_or_default();
            let _ = writeln!(out, "context:  {}", pretty.replace('\n', "\n          "));
        }
        let _ = writeln!(
            out,
            "policy set: {}",
            crate::authz::short_version(&self.policy_version)
        );
        out
    }
}

impl DescribedRequest {
    /// Reads a described request from TOML or (when it starts with `{`) JSON.
    ///
    /// # Errors
    /// Neither parses, or a key is unknown.
    pub fn parse(text: &str) -> Result<Self, DescribeError> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| DescribeError(e.to_string()))
        } else {
            toml::from_str(text).map_err(|e| DescribeError(e.to_string().trim_end().to_owned()))
        }
    }

    /// Decides the request with `profile`, `snapshot` and `evaluator`.
    ///
    /// # Errors
    /// The method, a header or the body cannot be used.
    pub async fn explain(
        &self,
        profile: &VendorProfile,
        evaluator: &Evaluator,
        snapshot: &PolicySnapshot,
    ) -> Result<Explanation, DescribeError> {
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| DescribeError(format!("method `{}` is not valid", self.method)))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| DescribeError(format!("header name `{name}` is not valid")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| DescribeError(format!("header `{name}` has an invalid value")))?;
            headers.append(name, value);
        }
        let body = match (&self.json, &self.body) {
            (Some(_), Some(_)) => {
                return Err(DescribeError("give `json` or `body`, not both".into()))
            }
            (Some(json), None) => {
                headers
                    .entry(http::header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
                json.to_string().into_bytes()
            }
            (None, Some(body)) => body.clone().into_bytes(),
            (None, None) => Vec::new(),
        };
        let (path, query) = match self.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.path.as_str(), None),
        };
        let head = RequestHead {
            method: &method,
            path,
            query,
            headers: &headers,
            has_body: !body.is_empty(),
        };
        let conn = ConnInfo {
            client_addr: SocketAddr::new(self.client_ip, 0),
            tls: self.client_cert_subject.is_some(),
            client_cert: self.client_cert_subject.clone().map(|subject| ClientCert {
                subject,
                sans: Vec::new(),
            }),
            via: None,
        };
        let mut explanation = Explanation {
            decision: "deny".into(),
            caller: None,
            credential: None,
            targets: Vec::new(),
            reasons: Vec::new(),
            refusal: None,
            context: None,
            policy_version: snapshot.version().to_owned(),
        };
        let call = match profile::classify(profile, &head) {
            Classification::NotErasure => {
                explanation.decision = "pass-through".into();
                return Ok(explanation);
            }
            Classification::Refused(ambiguity) => {
                let refusal = crate::response::Refusal::Ambiguous(ambiguity.reason());
                explanation.reasons.push(refusal.message());
                explanation.refusal = Some(refusal_json(&refusal));
                return Ok(explanation);
            }
            Classification::Erasure(call) => call,
        };
        let given = Given {
            caller: self.caller.as_ref().map(|c| Caller {
                id: c.id.clone(),
                roles: c.roles.clone(),
                source: CallerSource::Given,
            }),
            entities: self.entities.clone(),
            counts: crate::budget::Counts {
                targets: self.erasures_in_window,
                calls: self.calls_in_window,
            },
            lifted: Vec::new(),
        };
        let evaluation = evaluator
            .evaluate(profile, &call, &head, &body, &conn, snapshot, given)
            .await;
        explanation.credential = Some(serde_json::json!({
            "kind": evaluation.credential.kind.as_str(),
            "fingerprint": evaluation.credential.fingerprint,
        }));
        explanation.caller = evaluation.caller.clone();
        explanation.context = evaluation.context.clone();
        if let Some(decision) = &evaluation.decision {
            explanation.targets = decision.targets.clone();
            explanation.reasons = decision.reasons.clone();
            if decision.allowed {
                explanation.decision = "allow".into();
            }
        }
        if let Some(refusal) = &evaluation.refusal {
            if evaluation.decision.is_none() {
                explanation.reasons.push(refusal.message());
            }
            explanation.refusal = Some(refusal_json(refusal));
        }
        Ok(explanation)
    }
}

fn refusal_json(refusal: &crate::response::Refusal) -> Value {
    serde_json::json!({
        "status": refusal.status().as_u16(),
        "type": refusal.error_type(),
        "message": refusal.message(),
    })
}
