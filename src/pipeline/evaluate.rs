//! Evaluating one erasure call: strict parse → identify the caller → fetch
//! entities → Cedar. No forwarding and no trail: the live pipeline, `policy
//! test`, `explain` and `/v1/authorize` all run this same path.

use std::sync::Arc;

use serde_json::Value;

use tracing::Instrument as _;

use crate::authz::{Decision, DecisionInput, PolicySnapshot, Principal};
use crate::budget::{Account, Budgets, Charge, Counts};
use crate::conn::ConnInfo;
use crate::directory::{Directory, DirectoryError};
use crate::identity::{Caller, Identifier};
use crate::profile::{
    self, Credential, CredentialKind, ErasureCall, ErasureRequest, RequestHead, Target,
    VendorProfile,
};
use crate::response::Refusal;
use crate::telemetry;

/// What the evaluation found; `refusal` is set when the call must not be
/// forwarded in enforce mode.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The credential's kind and fingerprint (never the token).
    pub credential: Credential,
    /// The parsed call, when parsing succeeded.
    pub erasure: Option<ErasureRequest>,
    /// The caller, once identified.
    pub caller: Option<Caller>,
    /// The Cedar context, once built.
    pub context: Option<Value>,
    /// The caller's budget counts before this call, once read.
    pub counts: Option<Counts>,
    /// What charging the call to its budget came to (the live pipeline,
    /// after an allowing decision).
    pub charge: Option<Charge>,
    /// Cedar's decision, when reached.
    pub decision: Option<Decision>,
    /// Why the call is refused before or by the decision.
    pub refusal: Option<Refusal>,
    /// The policy-set version used.
    pub policy_version: String,
    /// How long Cedar took to decide, when it did.
    pub decide_took: Option<std::time::Duration>,
}

impl Evaluation {
    /// A call refused before it could be evaluated (ambiguous, unreadable).
    pub fn refused(credential: Credential, refusal: Refusal, policy_version: &str) -> Self {
        Self {
            credential,
            erasure: None,
            caller: None,
            context: None,
            counts: None,
            charge: None,
            decision: None,
            refusal: Some(refusal),
            policy_version: policy_version.to_owned(),
            decide_took: None,
        }
    }

    /// The targets named by the call (none when it did not parse).
    pub fn targets(&self) -> &[Target] {
        self.erasure.as_ref().map_or(&[], |e| &e.targets)
    }
}

/// What a described request supplies instead of the live sources.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// Use this caller instead of identifying one from the credential.
    pub caller: Option<Caller>,
    /// Add these entities (Cedar entity JSON) to the policy files' ones.
    pub entities: Vec<Value>,
    /// The budget counts, where the evaluator has no budget store.
    pub counts: Counts,
    /// Policies left out of the decision: `@approval` forbids a second
    /// caller approved for this call.
    pub lifted: Vec<String>,
}

/// Identity and entity sources for evaluations.
#[derive(Debug)]
pub struct Evaluator {
    identifier: Identifier,
    directory: Option<Directory>,
    budgets: Option<Arc<Budgets>>,
}

impl Evaluator {
    /// An evaluator over a caller table and an optional entity directory;
    /// without `budgets`, the counts in the context are the ones [`Given`].
    pub fn new(
        identifier: Identifier,
        directory: Option<Directory>,
        budgets: Option<Arc<Budgets>>,
    ) -> Self {
        Self {
            identifier,
            directory,
            budgets,
        }
    }

    /// Evaluates an erasure call whose body has been read. `given` replaces
    /// parts of the evaluation for described requests (policy tests,
    /// `explain`): a caller instead of identifying one from the credential,
    /// and extra entities.
    #[allow(clippy::too_many_arguments)]
    pub async fn evaluate(
        &self,
        profile: &VendorProfile,
        call: &ErasureCall,
        head: &RequestHead<'_>,
        body: &[u8],
        conn: &ConnInfo,
        snapshot: &PolicySnapshot,
        given: Given,
    ) -> Evaluation {
        let caller = given.caller;
        let mut evaluation = Evaluation {
            credential: profile::credential(profile, head.headers),
            erasure: None,
            caller: None,
            context: None,
            counts: None,
            charge: None,
            decision: None,
            refusal: None,
            policy_version: snapshot.version().to_owned(),
            decide_took: None,
        };
        let erasure = match profile::parse(profile, call, head, body) {
            Ok(erasure) => erasure,
            Err(e) => {
                evaluation.refusal = Some(Refusal::Invalid(e.to_string()));
                return evaluation;
            }
        };
        let caller = match caller {
            Some(caller) => caller,
            None => {
                let credential = &evaluation.credential;
                let identified = self
                    .identify(
                        credential.token(),
                        credential.kind == CredentialKind::Jwt,
                        conn.client_cert.as_ref(),
                    )
                    .instrument(telemetry::stage("identify"))
                    .await;
                match identified {
                    Ok(caller) => caller,
                    Err(e) => {
                        evaluation.erasure = Some(erasure);
                        evaluation.refusal = Some(Refusal::Unauthenticated(e.to_string()));
                        return evaluation;
                    }
                }
            }
        };
        let counts = match &self.budgets {
            None => given.counts,
            Some(budgets) => {
                let account = Account {
                    caller: &caller.id,
                    vendor: &profile.name,
                };
                match budgets
                    .counts(account)
                    .instrument(telemetry::stage("budget"))
                    .await
                {
                    Ok(counts) => counts,
                    Err(e) => {
                        tracing::warn!(error = %e, "erasure budgets unavailable");
                        evaluation.erasure = Some(erasure);
                        evaluation.caller = Some(caller);
                        evaluation.refusal = Some(Refusal::BudgetUnavailable);
                        return evaluation;
                    }
                }
            }
        };
        evaluation.counts = Some(counts);
        let extra_entities = match self
            .fetch_entities(snapshot, &erasure)
            .instrument(telemetry::stage("directory"))
            .await
        {
            Ok(mut entities) => {
                entities.extend(given.entities);
                entities
            }
            Err(e) => {
                tracing::warn!(error = %e, "entity directory failed");
                evaluation.erasure = Some(erasure);
                evaluation.caller = Some(caller);
                evaluation.refusal = Some(Refusal::EntitiesUnavailable);
                return evaluation;
            }
        };
        let context = cedar_context(profile, &erasure, &evaluation.credential, conn, counts);
        let deciding = std::time::Instant::now();
        let cedar = telemetry::stage("cedar");
        let decision = cedar.in_scope(|| {
            snapshot.decide_lifted(
                &DecisionInput {
                    principal: Principal {
                        id: &caller.id,
                        roles: &caller.roles,
                    },
                    namespace: &erasure.namespace,
                    action: &erasure.action,
                    targets: &erasure.targets,
                    context: context.clone(),
                    extra_entities,
                },
                &given.lifted,
            )
        });
        evaluation.decide_took = Some(deciding.elapsed());
        if !decision.allowed {
            evaluation.refusal = Some(Refusal::Denied {
                policies: decision.policies().into_iter().map(str::to_owned).collect(),
                reasons: decision.reasons.clone(),
            });
        }
        evaluation.erasure = Some(erasure);
        evaluation.caller = Some(caller);
        evaluation.context = Some(context);
        evaluation.decision = Some(decision);
        evaluation
    }

    /// The caller a credential (or else a verified client certificate)
    /// identifies: `anonymous` without either.
    ///
    /// # Errors
    /// A JWT that does not verify.
    pub async fn identify(
        &self,
        token: Option<&str>,
        is_jwt: bool,
        cert: Option<&crate::conn::ClientCert>,
    ) -> Result<Caller, crate::identity::IdentityError> {
        self.identifier.prepare(token, is_jwt).await;
        self.identifier.identify_with_cert(token, is_jwt, cert)
    }

    /// Entity data for targets the policy files do not describe, from the
    /// directory (cached); none without a directory.
    async fn fetch_entities(
        &self,
        snapshot: &PolicySnapshot,
        erasure: &ErasureRequest,
    ) -> Result<Vec<Value>, DirectoryError> {
        let Some(directory) = &self.directory else {
            return Ok(Vec::new());
        };
        let mut wanted: Vec<&Target> = erasure
            .targets
            .iter()
            .filter(|t| !snapshot.has_entity(&t.entity_type, &t.id))
            .collect();
        wanted.sort_by(|a, b| (&a.entity_type, &a.id).cmp(&(&b.entity_type, &b.id)));
        wanted.dedup();
        let lookups = wanted
            .iter()
            .map(|t| directory.entity(&t.entity_type, &t.id));
        let found = futures_util::future::try_join_all(lookups).await?;
        Ok(found
            .into_iter()
            .flatten()
            .map(|entity| entity.as_ref().clone())
            .collect())
    }
}

/// The Cedar context of an erasure call: the vendor's own fields (workspace,
/// bots, …) and what the gateway knows about the connection and credential.
fn cedar_context(
    profile: &VendorProfile,
    erasure: &ErasureRequest,
    credential: &Credential,
    conn: &ConnInfo,
    counts: Counts,
) -> Value {
    let mut context = erasure.context.clone();
    context.insert("vendor".into(), profile.name.clone().into());
    context.insert("target_count".into(), erasure.targets.len().into());
    context.insert("erasures_in_window".into(), counts.targets.into());
    context.insert("calls_in_window".into(), counts.calls.into());
    context.insert("client_ip".into(), conn.client_addr.ip().to_string().into());
    context.insert("client_cert".into(), conn.client_cert.is_some().into());
    if let Some(cert) = &conn.client_cert {
        context.insert("client_cert_subject".into(), cert.subject.clone().into());
    }
    context.insert(
        "credential".into(),
        serde_json::json!({
            "kind": credential.kind.as_str(),
            "fingerprint": credential.fingerprint,
        }),
    );
    Value::Object(context)
}
