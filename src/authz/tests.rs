//! Tests of loading and deciding with the shipped and hand-made policy sets.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::*;
use crate::profile::IdForm;
use serde_json::json;

fn shipped() -> PolicySnapshot {
    PolicySnapshot::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .unwrap_or_else(|e| panic!("shipped policies load: {e}"))
}

pub(super) fn context(
    vendor: &str,
    count: usize,
    kind: &str,
    extra: &serde_json::Value,
) -> serde_json::Value {
    let mut ctx = json!({
        "vendor": vendor,
        "target_count": count,
        "erasures_in_window": 0,
        "calls_in_window": 0,
        "client_ip": "127.0.0.1",
        "client_cert": false,
        "credential": {"kind": kind, "fingerprint": "0123456789ab"},
    });
    if let (Some(ctx), Some(extra)) = (ctx.as_object_mut(), extra.as_object()) {
        ctx.extend(extra.clone());
    }
    ctx
}

struct Case {
    name: &'static str,
    caller: &'static str,
    roles: &'static [&'static str],
    namespace: &'static str,
    action: &'static str,
    target: (&'static str, &'static str),
    context: serde_json::Value,
    allowed: bool,
    policies: &'static [&'static str],
}

#[test]
fn shipped_policies_decide_the_seed_rules() {
    let snapshot = shipped();
    let officer: &[&str] = &["privacy-officer"];
    let cases = vec![
        Case {
            name: "privacy officer erases a Seam customer",
            caller: "ops",
            roles: officer,
            namespace: "Seam",
            action: "delete_data",
            target: ("Seam::Customer", "cust-1"),
            context: context("seam", 1, "api_key", &json!({})),
            allowed: true,
            policies: &["privacy-officers-may-erase"],
        },
        Case {
            name: "a caller without the role is not permitted",
            caller: "intern",
            roles: &[],
            namespace: "Seam",
            action: "delete_data",
            target: ("Seam::Customer", "cust-1"),
            context: context("seam", 1, "api_key", &json!({})),
            allowed: false,
            policies: &[],
        },
        Case {
            name: "anonymous is denied even with the role",
            caller: "anonymous",
            roles: officer,
            namespace: "BotPenguin",
            action: "delete_customer",
            target: ("BotPenguin::Customer", "c-1"),
            context: context("botpenguin", 1, "none", &json!({})),
            allowed: false,
            policies: &["deny-anonymous"],
        },
        Case {
            name: "Kore account owner is never erased",
            caller: "ops",
            roles: officer,
            namespace: "Kore",
            action: "eraseUsersData",
            target: ("Kore::User", "owner@example.com"),
            context: context("kore", 1, "jwt", &json!({})),
            allowed: false,
            policies: &["kore-never-erase-account-owners"],
        },
        Case {
            name: "Kore bot co-developer is never erased",
            caller: "ops",
            roles: officer,
            namespace: "Kore",
            action: "eraseUsersData",
            target: ("Kore::User", "u-codev-0001"),
            context: context("kore", 1, "jwt", &json!({})),
            allowed: false,
            policies: &["kore-never-erase-bot-developers"],
        },
        Case {
            name: "Kore ordinary user is erased",
            caller: "ops",
            roles: officer,
            namespace: "Kore",
            action: "eraseUsersData",
            target: ("Kore::User", "u-ordinary-0001"),
            context: context("kore", 1, "jwt", &json!({"remove_from_all_bots": true})),
            allowed: true,
            policies: &["privacy-officers-may-erase"],
        },
        Case {
            name: "Seam personal access token without workspace is denied",
            caller: "ops",
            roles: officer,
            namespace: "Seam",
            action: "delete_data",
            target: ("Seam::User", "u-1"),
            context: context("seam", 1, "personal_access_token", &json!({})),
            allowed: false,
            policies: &["seam-pat-requires-workspace"],
        },
        Case {
            name: "Seam personal access token with workspace is allowed",
            caller: "ops",
            roles: officer,
            namespace: "Seam",
            action: "delete_data",
            target: ("Seam::User", "u-1"),
            context: context(
                "seam",
                1,
                "personal_access_token",
                &json!({"workspace": "ws_1"}),
            ),
            allowed: true,
            policies: &["privacy-officers-may-erase"],
        },
        Case {
            name: "more than 50 targets need the bulk role",
            caller: "ops",
            roles: officer,
            namespace: "Seam",
            action: "delete_data",
            target: ("Seam::Space", "s-1"),
            context: context("seam", 51, "api_key", &json!({})),
            allowed: false,
            policies: &["bulk-erasure-requires-role"],
        },
        Case {
            name: "the bulk role lifts the limit",
            caller: "ops",
            roles: &["privacy-officer", "bulk-eraser"],
            namespace: "Seam",
            action: "delete_data",
            target: ("Seam::Space", "s-1"),
            context: context("seam", 51, "api_key", &json!({})),
            allowed: true,
            policies: &["privacy-officers-may-erase"],
        },
        Case {
            name: "exactly 50 targets need no bulk role",
            caller: "ops",
            roles: officer,
            namespace: "Seam",
            action: "delete_data",
            target: ("Seam::Space", "s-1"),
            context: context("seam", 50, "api_key", &json!({})),
            allowed: true,
            policies: &["privacy-officers-may-erase"],
        },
    ];
    for case in cases {
        let roles: Vec<String> = case.roles.iter().map(|r| (*r).to_owned()).collect();
        let targets = [Target::exact(case.target.0, case.target.1)];
        let decision = snapshot.decide(&DecisionInput {
            principal: Principal {
                id: case.caller,
                roles: &roles,
            },
            namespace: case.namespace,
            action: case.action,
            targets: &targets,
            context: case.context,
            extra_entities: Vec::new(),
        });
        assert_eq!(
            decision.allowed, case.allowed,
            "{}: {decision:?}",
            case.name
        );
        assert_eq!(decision.policies(), case.policies, "{}", case.name);
        assert_eq!(decision.reasons.is_empty(), case.allowed, "{}", case.name);
    }
}

fn sources(policies: &str) -> Result<PolicySnapshot, PolicyErrors> {
    let schema = include_str!("../../policies/schema.cedarschema");
    PolicySnapshot::from_sources(
        (Path::new("policies/schema.cedarschema"), schema),
        &[(PathBuf::from("policies/p.cedar"), policies.to_owned())],
        None,
    )
}

#[test]
fn ids_not_written_the_way_the_vendor_compares_them_refuse_the_set() {
    let forms = [("Kore::User".to_owned(), IdForm::EmailCasefold)];
    assert!(shipped().check_id_forms(&forms).is_ok());
    let schema = include_str!("../../policies/schema.cedarschema");
    let entities = r#"[{"uid":{"type":"Kore::User","id":"Owner@Example.com"},"attrs":{"account_owner":true},"parents":[]}]"#;
    let policy =
        r#"@id("p") forbid (principal, action, resource == Kore::User::"Boss@Example.com");"#;
    let snapshot = PolicySnapshot::from_sources(
        (Path::new("policies/schema.cedarschema"), schema),
        &[(PathBuf::from("policies/p.cedar"), policy.to_owned())],
        Some((Path::new("policies/entities.json"), entities)),
    )
    .unwrap();
    let errors = snapshot.check_id_forms(&forms).unwrap_err().to_string();
    assert!(
        errors.contains("policies/entities.json") && errors.contains("write `owner@example.com`"),
        "{errors}"
    );
    assert!(
        errors.contains("policy `p`") && errors.contains("write `boss@example.com`"),
        "{errors}"
    );
    // Exact types are not checked.
    assert!(snapshot.check_id_forms(&[]).is_ok());
}

#[test]
fn one_denied_target_denies_the_whole_call() {
    let snapshot = shipped();
    let roles = vec!["privacy-officer".to_owned()];
    let targets = [
        Target::exact("Kore::User", "u-ordinary-0001"),
        Target::exact("Kore::User", "owner@example.com"),
    ];
    let decision = snapshot.decide(&DecisionInput {
        principal: Principal {
            id: "ops",
            roles: &roles,
        },
        namespace: "Kore",
        action: "eraseUsersData",
        targets: &targets,
        context: context("kore", 2, "jwt", &json!({})),
        extra_entities: Vec::new(),
    });
    assert!(!decision.allowed);
    assert!(decision.targets[0].allowed);
    assert!(!decision.targets[1].allowed);
    assert_eq!(
        decision.reasons,
        ["Kore::User: forbidden by kore-never-erase-account-owners"]
    );
}

#[test]
fn an_erroring_forbid_denies_instead_of_being_skipped() {
    // The multiplication overflows at evaluation time. Cedar would skip
    // the erroring forbid and allow through the permit; the gateway denies.
    let snapshot = sources(
        r#"@id("allow-all") permit (principal, action, resource);
           @id("overflowing-forbid") forbid (principal, action, resource)
           when { context.target_count * 4611686018427387904 > 0 };"#,
    )
    .expect("the set validates strictly");
    let targets = [
        Target::exact("Seam::Customer", "a"),
        Target::exact("Seam::Customer", "b"),
    ];
    let decision = snapshot.decide(&DecisionInput {
        principal: Principal {
            id: "ops",
            roles: &[],
        },
        namespace: "Seam",
        action: "delete_data",
        targets: &targets,
        context: context("seam", 2, "api_key", &json!({})),
        extra_entities: Vec::new(),
    });
    assert!(!decision.allowed, "{decision:?}");
    assert!(decision
        .targets
        .iter()
        .all(|t| !t.allowed && !t.errors.is_empty()));
    assert!(
        decision.targets[0].errors[0].contains("overflowing-forbid"),
        "{decision:?}"
    );
}

#[test]
fn errors_name_file_line_and_policy_id() {
    let err =
        sources("@id(\"a\")\npermit (principal, action, resource)\nwhen { context.nope == 1 };\n")
            .expect_err("unknown context attribute fails strict validation");
    let text = err.to_string();
    assert!(text.starts_with("policies/p.cedar:3:"), "{text}");
    assert!(text.contains("policy `a`"), "{text}");

    let err =
        sources("@id(\"a\")\npermit (principal, action, resource) when { 1 + };\n").unwrap_err();
    assert!(err.to_string().starts_with("policies/p.cedar:2:"), "{err}");

    let err = sources("permit (principal, action, resource);\n").unwrap_err();
    assert!(err.to_string().contains("has no @id"), "{err}");

    let err = sources("@id(\"a\") permit (principal, action, resource);\n@id(\"a\") forbid (principal, action, resource);\n").unwrap_err();
    assert!(err.to_string().contains("policy `a`"), "{err}");
}

#[test]
fn callers_in_entities_json_are_refused() {
    let schema = include_str!("../../policies/schema.cedarschema");
    let err = PolicySnapshot::from_sources(
        (Path::new("s"), schema),
        &[(
            PathBuf::from("p.cedar"),
            "@id(\"a\") permit (principal, action, resource);".into(),
        )],
        Some((
            Path::new("entities.json"),
            r#"[{"uid":{"type":"Gateway::Caller","id":"x"},"attrs":{},"parents":[]}]"#,
        )),
    )
    .unwrap_err();
    assert!(err.to_string().contains("[[caller]]"), "{err}");
}

/// Entities are validated in batches; a uid listed twice is refused even
/// when the two are in different batches, and an entity Cedar refuses is
/// named with the file.
#[test]
fn an_entity_listed_twice_or_off_schema_is_refused_with_the_file() {
    let schema = include_str!("../../policies/schema.cedarschema");
    let load = |entities: &str| {
        PolicySnapshot::from_sources(
            (Path::new("s"), schema),
            &[(
                PathBuf::from("p.cedar"),
                "@id(\"a\") permit (principal, action, resource);".into(),
            )],
            Some((Path::new("entities.json"), entities)),
        )
    };
    let user = |id: &str| {
        format!(
            r#"{{"uid":{{"type":"Kore::User","id":"{id}"}},"attrs":{{"account_owner":false,"developer_of":[]}},"parents":[]}}"#
        )
    };
    let mut many: Vec<String> = (0..1500).map(|i| user(&format!("u-{i}"))).collect();
    assert!(load(&format!("[{}]", many.join(","))).is_ok());
    many.push(user("u-3"));
    let err = load(&format!("[{}]", many.join(",")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("entities.json") && err.contains("listed twice"),
        "{err}"
    );
    let err = load(
        r#"[{"uid":{"type":"Kore::User","id":"x"},"attrs":{"account_owner":"yes"},"parents":[]}]"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("entities.json") && err.contains("does not conform"),
        "{err}"
    );
}

#[test]
fn the_version_changes_with_any_file() {
    let a = sources("@id(\"a\") permit (principal, action, resource);").unwrap();
    let b = sources("@id(\"a\") permit (principal, action, resource); ").unwrap();
    assert_ne!(a.version(), b.version());
    assert!(a.version().starts_with("sha256:"));
    assert_eq!(a.version().len(), "sha256:".len() + 64, "the full digest");
    assert_eq!(a.short_version().len(), "sha256:".len() + 16);
    assert!(a.version().starts_with(a.short_version()));
}

/// A hierarchy and entity-valued attributes Cedar can reach: teams in orgs,
/// managers, and a policy naming an entity literally.
const SLICE_SCHEMA: &str = r#"
namespace Gateway { entity Role; entity Caller in [Role]; }
namespace T {
  entity Org;
  entity Team in [Org] { lead?: User };
  entity User in [Team] { manager?: User, vip?: Bool, peers?: Set<User> };
  action "erase" appliesTo { principal: [Gateway::Caller], resource: [User], context: {} };
}
"#;

const SLICE_POLICIES: &str = r#"
@id("officers") permit (principal in Gateway::Role::"officer", action, resource);
@id("board") forbid (principal, action, resource in T::Org::"board");
@id("vip-manager") forbid (principal, action, resource)
  when { resource has manager && resource.manager has vip && resource.manager.vip };
@id("vip-peer") forbid (principal, action, resource)
  when { resource has peers && T::Team::"core" has lead && resource.peers.contains(T::Team::"core".lead) };
@id("ceo-reports") forbid (principal, action, resource)
  when { T::User::"ceo" has manager && resource == T::User::"ceo".manager };
"#;

const SLICE_ENTITIES: &str = r#"[
  {"uid":{"type":"T::Org","id":"board"},"attrs":{},"parents":[]},
  {"uid":{"type":"T::Org","id":"staff"},"attrs":{},"parents":[]},
  {"uid":{"type":"T::Team","id":"core"},"attrs":{"lead":{"type":"T::User","id":"lead"}},"parents":[{"type":"T::Org","id":"staff"}]},
  {"uid":{"type":"T::Team","id":"chairs"},"attrs":{},"parents":[{"type":"T::Org","id":"board"}]},
  {"uid":{"type":"T::User","id":"lead"},"attrs":{},"parents":[{"type":"T::Team","id":"core"}]},
  {"uid":{"type":"T::User","id":"boss"},"attrs":{"vip":true},"parents":[]},
  {"uid":{"type":"T::User","id":"chair"},"attrs":{},"parents":[{"type":"T::Team","id":"chairs"}]},
  {"uid":{"type":"T::User","id":"report"},"attrs":{"manager":{"type":"T::User","id":"boss"}},"parents":[]},
  {"uid":{"type":"T::User","id":"peer"},"attrs":{"peers":[{"type":"T::User","id":"lead"}]},"parents":[]},
  {"uid":{"type":"T::User","id":"ceo"},"attrs":{"manager":{"type":"T::User","id":"chairman"}},"parents":[]},
  {"uid":{"type":"T::User","id":"chairman"},"attrs":{},"parents":[]},
  {"uid":{"type":"T::User","id":"plain"},"attrs":{},"parents":[{"type":"T::Team","id":"core"}]}
]"#;

#[test]
fn a_call_is_decided_on_its_entity_slice_as_on_the_whole_store() {
    let snapshot = PolicySnapshot::from_sources(
        (Path::new("schema.cedarschema"), SLICE_SCHEMA),
        &[(PathBuf::from("p.cedar"), SLICE_POLICIES.to_owned())],
        Some((Path::new("entities.json"), SLICE_ENTITIES)),
    )
    .unwrap();
    // A fetched user whose team (stored) is on the board, and one whose
    // manager (stored) is a VIP.
    let fetched = vec![
        json!({"uid":{"type":"T::User","id":"fetched-chair"},"attrs":{},"parents":[{"type":"T::Team","id":"chairs"}]}),
        json!({"uid":{"type":"T::User","id":"fetched-report"},"attrs":{"manager":{"__entity":{"type":"T::User","id":"boss"}}},"parents":[]}),
    ];
    let expect = [
        ("plain", true, "officers"),
        ("lead", true, "officers"),
        ("chair", false, "board"),
        ("report", false, "vip-manager"),
        ("peer", false, "vip-peer"),
        ("chairman", false, "ceo-reports"),
        ("unknown", true, "officers"),
        ("fetched-chair", false, "board"),
        ("fetched-report", false, "vip-manager"),
    ];
    let roles = ["officer".to_owned()];
    for (id, allowed, policy) in expect {
        let targets = [Target::exact("T::User", id)];
        let input = DecisionInput {
            principal: Principal {
                id: "ops",
                roles: &roles,
            },
            namespace: "T",
            action: "erase",
            targets: &targets,
            context: json!({}),
            extra_entities: fetched.clone(),
        };
        let decision = snapshot.decide(&input);
        assert_eq!(decision.allowed, allowed, "{id}: {decision:?}");
        assert_eq!(decision.policies(), [policy], "{id}");

        // The same request against the whole store, as it was decided
        // before slicing, determines the same policies.
        let whole = whole_store_decision(&snapshot, &input);
        assert_eq!(
            (whole.0, whole.1),
            (decision.allowed, vec![policy.to_owned()]),
            "{id}"
        );
    }
}

/// Cedar's answer with every stored entity present.
fn whole_store_decision(
    snapshot: &PolicySnapshot,
    input: &DecisionInput<'_>,
) -> (bool, Vec<String>) {
    let mut added = vec![json!({
        "uid": {"type": "Gateway::Caller", "id": input.principal.id},
        "attrs": {},
        "parents": input.principal.roles.iter().map(|r| json!({"type": "Gateway::Role", "id": r})).collect::<Vec<_>>(),
    })];
    added.extend(input.extra_entities.iter().cloned());
    let entities = snapshot
        .entities
        .whole(&snapshot.schema)
        .add_entities_from_json_value(serde_json::Value::Array(added), Some(&snapshot.schema))
        .unwrap();
    let action = uid(&format!("{}::Action", input.namespace), input.action).unwrap();
    let request = cedar_policy::Request::new(
        uid("Gateway::Caller", input.principal.id).unwrap(),
        action.clone(),
        uid(&input.targets[0].entity_type, &input.targets[0].id).unwrap(),
        cedar_policy::Context::from_json_value(
            input.context.clone(),
            Some((&snapshot.schema, &action)),
        )
        .unwrap(),
        Some(&snapshot.schema),
    )
    .unwrap();
    let response =
        cedar_policy::Authorizer::new().is_authorized(&request, &snapshot.policies, &entities);
    assert_eq!(response.diagnostics().errors().count(), 0);
    let mut policies: Vec<String> = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    policies.sort_unstable();
    (
        response.decision() == cedar_policy::Decision::Allow,
        policies,
    )
}

#[test]
fn the_policy_index_leaves_out_only_policies_whose_scope_cannot_hold() {
    let schema = include_str!("../../policies/schema.cedarschema");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut policies: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    // Scopes naming one principal, one resource, both, a type, and another
    // action, beside the shipped (mostly unscoped) policies.
    policies.push((
        PathBuf::from("scoped.cedar"),
        r#"
@id("vip-1") forbid (principal, action == Seam::Action::"delete_data", resource == Seam::Customer::"vip-1");
@id("team-2") permit (principal == Gateway::Caller::"team-2", action == Seam::Action::"delete_data", resource)
  when { context has workspace && context.workspace == "ws-2" };
@id("pair") forbid (principal == Gateway::Caller::"team-2", action, resource == Seam::Customer::"c-3");
@id("users-only") forbid (principal, action, resource is Seam::User) when { context.target_count > 5 };
@id("kore-only") forbid (principal, action == Kore::Action::"eraseUsersData", resource);
"#
        .to_owned(),
    ));
    let snapshot =
        PolicySnapshot::from_sources((Path::new("schema.cedarschema"), schema), &policies, None)
            .unwrap();
    let officer = ["privacy-officer".to_owned()];
    let callers: [(&str, &[String]); 3] = [("ops", &officer), ("team-2", &[]), ("team-9", &[])];
    let resources = [
        ("Seam::Customer", "vip-1"),
        ("Seam::Customer", "c-3"),
        ("Seam::Customer", "c-4"),
        ("Seam::User", "u-1"),
    ];
    let mut decided = 0;
    for (caller, roles) in callers {
        for (entity_type, id) in resources {
            for workspace in ["ws-2", "ws-9"] {
                let targets = [Target::exact(entity_type, id)];
                let input = DecisionInput {
                    principal: Principal { id: caller, roles },
                    namespace: "Seam",
                    action: "delete_data",
                    targets: &targets,
                    context: context("seam", 6, "api_key", &json!({"workspace": workspace})),
                    extra_entities: Vec::new(),
                };
                let decision = snapshot.decide(&input);
                let policies: Vec<String> =
                    decision.policies().into_iter().map(str::to_owned).collect();
                assert_eq!(
                    (decision.allowed, policies),
                    whole_store_decision(&snapshot, &input),
                    "{caller} {entity_type}::{id} {workspace}"
                );
                decided += usize::from(decision.allowed);
            }
        }
    }
    // Both answers occur, so the comparison is not of two constant denials.
    assert!(decided > 0 && decided < 24, "{decided} of 24 allowed");
}

/// A call on `schema` and `policies` (no entities file) by an officer.
fn decide_on(schema: &str, policies: &str, action: &str, targets: &[Target]) -> Decision {
    let snapshot = PolicySnapshot::from_sources(
        (Path::new("schema.cedarschema"), schema),
        &[(PathBuf::from("p.cedar"), policies.to_owned())],
        None,
    )
    .unwrap();
    let roles = ["officer".to_owned()];
    snapshot.decide(&DecisionInput {
        principal: Principal {
            id: "ops",
            roles: &roles,
        },
        namespace: "T",
        action,
        targets,
        context: json!({}),
        extra_entities: Vec::new(),
    })
}

#[test]
fn an_id_outside_an_enumerated_type_denies_even_after_a_valid_one() {
    let schema = r#"
namespace Gateway { entity Role; entity Caller in [Role]; }
namespace T {
  entity Region enum ["eu", "us"];
  action "erase" appliesTo { principal: [Gateway::Caller], resource: [Region], context: {} };
}
"#;
    let policies = r#"@id("p") permit (principal, action, resource is T::Region);"#;
    let valid = [Target::exact("T::Region", "eu")];
    assert!(decide_on(schema, policies, "erase", &valid).allowed);
    // The schema check reads an enumerated id: "mars" is not one, even when
    // a valid target of the same type came first in the call.
    let mixed = [
        Target::exact("T::Region", "eu"),
        Target::exact("T::Region", "mars"),
    ];
    let decision = decide_on(schema, policies, "erase", &mixed);
    assert!(!decision.allowed, "{decision:?}");
    assert!(decision.targets[0].allowed && !decision.targets[1].allowed);
    assert!(!decision.targets[1].errors.is_empty());
}

#[test]
fn an_action_group_holds_without_an_entities_file() {
    let schema = r#"
namespace Gateway { entity Role; entity Caller in [Role]; }
namespace T {
  entity User;
  action "erase_any";
  action "erase" in ["erase_any"] appliesTo { principal: [Gateway::Caller], resource: [User], context: {} };
}
"#;
    let policies = r#"
@id("officers") permit (principal in Gateway::Role::"officer", action, resource);
@id("no-erasing-at-all") forbid (principal, action in T::Action::"erase_any", resource);
"#;
    let decision = decide_on(
        schema,
        policies,
        "erase",
        &[Target::exact("T::User", "u-1")],
    );
    assert!(!decision.allowed, "{decision:?}");
    assert_eq!(decision.policies(), ["no-erasing-at-all"]);
}
