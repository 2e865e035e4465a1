//! Which policies can apply to a request, found by their scope instead of
//! evaluating every policy for every target.
//!
//! A policy whose scope names one principal, action or resource (`==`), or
//! one entity type (`is`), cannot be satisfied by a request for another, and
//! Cedar evaluates its conditions only when the scope holds: leaving it out
//! changes neither the decision, nor the determining policies, nor the
//! errors. Policies scoped `resource == X` are kept under X, those scoped
//! `principal == P` under P, the rest in one general list.

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint,
};

/// The policies of a set, by the principal or resource their scope names.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicyIndex {
    general: Vec<Policy>,
    by_principal: HashMap<EntityUid, Vec<Policy>>,
    by_resource: HashMap<EntityUid, Vec<Policy>>,
}

impl PolicyIndex {
    /// Indexes every policy of `set`.
    pub(crate) fn new(set: &PolicySet) -> Self {
        let mut index = Self::default();
        for policy in set.policies() {
            let bucket = match (policy.resource_constraint(), policy.principal_constraint()) {
                (ResourceConstraint::Eq(resource), _) => {
                    index.by_resource.entry(resource).or_default()
                }
                (_, PrincipalConstraint::Eq(principal)) => {
                    index.by_principal.entry(principal).or_default()
                }
                _ => &mut index.general,
            };
            bucket.push(policy.clone());
        }
        index
    }

    /// The policies whose scope can hold for any resource of `resource`'s
    /// type (none of them names one resource), as a set to evaluate; `None`
    /// if they cannot be put in one (never for a set that loaded), in which
    /// case the caller evaluates the whole set.
    pub(crate) fn for_type(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> Option<PolicySet> {
        let by_principal = self.by_principal.get(principal).into_iter().flatten();
        let candidates = self
            .general
            .iter()
            .chain(by_principal)
            .filter(|p| scope_may_hold(p, principal, action, resource))
            .cloned();
        PolicySet::from_policies(candidates).ok()
    }

    /// The policies naming `resource` itself whose scope can hold.
    pub(crate) fn for_resource<'a>(
        &'a self,
        principal: &'a EntityUid,
        action: &'a EntityUid,
        resource: &'a EntityUid,
    ) -> impl Iterator<Item = &'a Policy> + 'a {
        self.by_resource
            .get(resource)
            .into_iter()
            .flatten()
            .filter(move |p| scope_may_hold(p, principal, action, resource))
    }
}

/// Whether the scope of `policy` can hold for the request: false only when
/// it names another principal, action or resource, or another entity type.
fn scope_may_hold(
    policy: &Policy,
    principal: &EntityUid,
    action: &EntityUid,
    resource: &EntityUid,
) -> bool {
    let principal_ok = match policy.principal_constraint() {
        PrincipalConstraint::Eq(uid) => &uid == principal,
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => &t == principal.type_name(),
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => true,
    };
    let action_ok = match policy.action_constraint() {
        ActionConstraint::Eq(uid) => &uid == action,
        ActionConstraint::Any | ActionConstraint::In(_) => true,
    };
    let resource_ok = match policy.resource_constraint() {
        ResourceConstraint::Eq(uid) => &uid == resource,
        ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => &t == resource.type_name(),
        ResourceConstraint::Any | ResourceConstraint::In(_) => true,
    };
    principal_ok && action_ok && resource_ok
}
