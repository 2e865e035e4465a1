//! `@approval` forbids: read at load, only on forbids, and a decision held
//! by them alone is allowed once they are lifted.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::tests::context;
use super::*;

#[test]
fn approval_annotations_are_read_at_load_and_only_on_forbids() {
    let schema = include_str!("../../policies/schema.cedarschema");
    let held = (
        PathBuf::from("approval.cedar"),
        r#"@id("bulk-held") @approval("more than three targets")
forbid (principal, action, resource) when { context.target_count > 3 };
@id("all") permit (principal, action, resource);"#
            .to_owned(),
    );
    let snapshot = PolicySnapshot::from_sources(
        (Path::new("schema.cedarschema"), schema),
        std::slice::from_ref(&held),
        None,
    )
    .unwrap();
    assert_eq!(
        snapshot
            .approval_policies()
            .get("bulk-held")
            .map(String::as_str),
        Some("more than three targets")
    );
    let officer = ["privacy-officer".to_owned()];
    let targets: Vec<Target> = (0..4)
        .map(|i| Target::exact("Seam::Customer", format!("c-{i}")))
        .collect();
    let input = DecisionInput {
        principal: Principal {
            id: "ops",
            roles: &officer,
        },
        namespace: "Seam",
        action: "delete_data",
        targets: &targets,
        context: context("seam", 4, "api_key", &json!({})),
        extra_entities: Vec::new(),
    };
    let decision = snapshot.decide(&input);
    assert_eq!(
        decision.held_by(snapshot.approval_policies()),
        Some(vec!["bulk-held"])
    );
    let lifted = snapshot.decide_lifted(&input, &["bulk-held".to_owned()]);
    assert!(lifted.allowed, "{lifted:?}");
    assert_eq!(lifted.held_by(snapshot.approval_policies()), None);

    let on_permit = (
        PathBuf::from("bad.cedar"),
        r#"@id("p") @approval("no") permit (principal, action, resource);"#.to_owned(),
    );
    let errors = PolicySnapshot::from_sources(
        (Path::new("schema.cedarschema"), schema),
        &[on_permit],
        None,
    )
    .unwrap_err();
    assert!(
        errors.to_string().contains("only allowed on a forbid"),
        "{errors}"
    );
}
