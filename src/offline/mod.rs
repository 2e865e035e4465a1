//! Deciding without serving: described requests (`explain`,
//! `/v1/authorize`), policy test cases (`policy test`) and trail replay
//! (`policy replay`). They run the pipeline's own evaluation, so an offline
//! answer is the answer the live gateway gives.

pub mod cases;
pub mod described;
pub mod replay;

/// Policy ids gathered from several targets, sorted and deduplicated.
fn policy_union<'a>(ids: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().cloned().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
