//! The differential property test: generated entity graphs, policy sets and
//! calls, each decided the fast way (entity slice, caller side kept built,
//! policy index, unnamed targets decided once, the context read literally)
//! and the plain way (every stored entity, every policy, one Cedar request
//! per target, Cedar's own context parser). Both must give every target the
//! same decision, the same determining policies, and errors (hence a deny)
//! for the same targets.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const SCHEMA: &str = r#"
namespace Gateway { entity Role; entity Caller in [Role]; }
namespace T {
  entity Org;
  entity Team in [Org] { lead?: User };
  entity User in [Team] { manager?: User, vip?: Bool, peers?: Set<User> };
  action "erase" appliesTo {
    principal: [Gateway::Caller],
    resource: [User],
    context: { n: Long, watch?: Set<User> },
  };
}
"#;

/// Scopes with `==`, `in`, `is` and none; conditions reading attributes,
/// ancestors, entity literals and the context; one that errors (overflow)
/// for some contexts.
const POOL: [&str; 12] = [
    r#"permit (principal in Gateway::Role::"officer", action, resource);"#,
    r#"permit (principal == Gateway::Caller::"p1", action, resource) when { context.n > 2 };"#,
    r#"forbid (principal, action, resource in T::Org::"board");"#,
    r#"forbid (principal, action, resource) when { resource has manager && resource.manager has vip && resource.manager.vip };"#,
    r#"forbid (principal, action, resource == T::User::"u3");"#,
    r#"forbid (principal, action, resource) when { context has watch && context.watch.contains(resource) };"#,
    r#"forbid (principal, action, resource) when { context.n * 4611686018427387904 > 0 };"#,
    r#"permit (principal, action, resource is T::User) when { resource in T::Team::"t1" };"#,
    r#"forbid (principal, action, resource) when { T::Team::"t0" has lead && resource == T::Team::"t0".lead };"#,
    r#"forbid (principal == Gateway::Caller::"p2", action, resource);"#,
    r#"forbid (principal, action, resource) when { resource has peers && resource.peers.contains(T::User::"u1") };"#,
    r#"permit (principal, action == T::Action::"erase", resource is T::User) when { context.n == 1 };"#,
];

/// A small deterministic generator, so that one seed is one whole case.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn user(n: u64) -> Value {
    json!({"type": "T::User", "id": format!("u{n}")})
}

/// A reference to a user as an attribute value: explicit (`__entity`, read
/// literally) or implicit (read by Cedar's schema-guided parser).
fn user_ref(draw: &mut Draw) -> Value {
    let reference = user(draw.below(10));
    if draw.chance(50) {
        json!({ "__entity": reference })
    } else {
        reference
    }
}

fn team(n: u64) -> Value {
    json!({"type": "T::Team", "id": format!("t{n}")})
}

/// Users u0–u5 may be stored; u6–u9 never are (the directory may bring u7).
fn entities(draw: &mut Draw) -> Value {
    let mut all = vec![
        json!({"uid": {"type": "T::Org", "id": "board"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "T::Org", "id": "staff"}, "attrs": {}, "parents": []}),
    ];
    for t in 0..3 {
        let org = if draw.chance(30) { "board" } else { "staff" };
        let mut attrs = serde_json::Map::new();
        if draw.chance(60) {
            attrs.insert("lead".into(), user_ref(draw));
        }
        all.push(
            json!({"uid": team(t), "attrs": attrs, "parents": [{"type": "T::Org", "id": org}]}),
        );
    }
    for u in 0..6 {
        if !draw.chance(60) {
            continue;
        }
        let parents: Vec<Value> = (0..3).filter(|_| draw.chance(35)).map(team).collect();
        let mut attrs = serde_json::Map::new();
        if draw.chance(40) {
            attrs.insert("manager".into(), user_ref(draw));
        }
        if draw.chance(40) {
            attrs.insert("vip".into(), draw.chance(50).into());
        }
        if draw.chance(30) {
            let peers: Vec<Value> = (0..2).map(|_| user_ref(draw)).collect();
            attrs.insert("peers".into(), peers.into());
        }
        all.push(json!({"uid": user(u), "attrs": attrs, "parents": parents}));
    }
    Value::Array(all)
}

fn policies(draw: &mut Draw) -> String {
    let mut text = String::new();
    for (n, policy) in POOL.iter().enumerate() {
        if draw.chance(55) {
            text.push_str(&format!("@id(\"p{n}\")\n{policy}\n"));
        }
    }
    text
}

/// Cedar's answer for one target with every stored entity and every policy.
fn plain(
    snapshot: &PolicySnapshot,
    input: &DecisionInput<'_>,
    target: &Target,
) -> (bool, Vec<String>, bool) {
    let caller = json!({
        "uid": {"type": "Gateway::Caller", "id": input.principal.id},
        "attrs": {},
        "parents": input.principal.roles.iter().map(|r| json!({"type": "Gateway::Role", "id": r})).collect::<Vec<_>>(),
    });
    let mut added = vec![caller];
    added.extend(input.extra_entities.iter().cloned());
    let entities = snapshot
        .entities
        .whole(&snapshot.schema)
        .add_entities_from_json_value(Value::Array(added), Some(&snapshot.schema))
        .unwrap();
    let action = uid("T::Action", input.action).unwrap();
    let context = cedar_policy::Context::from_json_value(
        input.context.clone(),
        Some((&snapshot.schema, &action)),
    )
    .unwrap();
    let request = cedar_policy::Request::new(
        uid("Gateway::Caller", input.principal.id).unwrap(),
        action,
        uid(&target.entity_type, &target.id).unwrap(),
        context,
        Some(&snapshot.schema),
    )
    .unwrap();
    let response =
        cedar_policy::Authorizer::new().is_authorized(&request, &snapshot.policies, &entities);
    let errors = response.diagnostics().errors().count() > 0;
    let mut determining: Vec<String> = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    determining.sort_unstable();
    (
        response.decision() == cedar_policy::Decision::Allow && !errors,
        determining,
        errors,
    )
}

/// One generated case: returns how many targets were allowed, denied, and
/// denied by an error.
fn case(seed: u64) -> (usize, usize, usize) {
    let mut draw = Draw(seed);
    let stored = entities(&mut draw).to_string();
    let snapshot = PolicySnapshot::from_sources(
        (Path::new("schema.cedarschema"), SCHEMA),
        &[(PathBuf::from("p.cedar"), policies(&mut draw))],
        Some((Path::new("entities.json"), &stored)),
    )
    .unwrap_or_else(|e| panic!("seed {seed}: generated set does not load: {e}"));
    let mut tallies = (0, 0, 0);
    // Several calls on one snapshot, so the caller side kept built is used
    // again, by the same and by other callers.
    for _ in 0..4 {
        let caller = format!("p{}", draw.below(3));
        let roles: Vec<String> = ["officer", "clerk"]
            .iter()
            .filter(|_| draw.chance(50))
            .map(|r| (*r).to_owned())
            .collect();
        let targets: Vec<Target> = (0..1 + draw.below(6))
            .map(|_| Target::exact("T::User", format!("u{}", draw.below(10))))
            .collect();
        let mut context = json!({"n": draw.below(4)});
        if draw.chance(50) {
            let watch: Vec<Value> = (0..2)
                .map(|_| json!({"__entity": user(draw.below(10))}))
                .collect();
            context["watch"] = watch.into();
        }
        let extra_entities = if draw.chance(40) {
            vec![
                json!({"uid": user(7), "attrs": {"manager": {"__entity": user(draw.below(6))}}, "parents": [team(draw.below(3))]}),
            ]
        } else {
            Vec::new()
        };
        let input = DecisionInput {
            principal: Principal {
                id: &caller,
                roles: &roles,
            },
            namespace: "T",
            action: "erase",
            targets: &targets,
            context,
            extra_entities,
        };
        let fast = snapshot.decide(&input);
        assert_eq!(fast.targets.len(), targets.len());
        for (target, decided) in targets.iter().zip(&fast.targets) {
            let (allowed, determining, errors) = plain(&snapshot, &input, target);
            assert_eq!(
                (
                    decided.allowed,
                    &decided.policies,
                    !decided.errors.is_empty()
                ),
                (allowed, &determining, errors),
                "seed {seed}: {} for {caller} {roles:?} in {:?}",
                target.id,
                input.context
            );
            if allowed {
                tallies.0 += 1;
            } else {
                tallies.1 += 1;
            }
            if errors {
                tallies.2 += 1;
            }
        }
        assert_eq!(fast.allowed, fast.targets.iter().all(|t| t.allowed));
    }
    tallies
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn the_fast_decision_is_cedars_decision_on_the_whole_store(seed in any::<u64>()) {
        case(seed);
    }
}

#[test]
fn the_generated_cases_allow_deny_and_error() {
    // The property above compares something: over a fixed range of seeds,
    // both answers and erroring targets occur.
    let (mut allowed, mut denied, mut errored) = (0, 0, 0);
    for seed in 0..60 {
        let (a, d, e) = case(seed);
        allowed += a;
        denied += d;
        errored += e;
    }
    assert!(
        allowed > 20 && denied > 20 && errored > 5,
        "{allowed} allowed, {denied} denied, {errored} by an error"
    );
}
