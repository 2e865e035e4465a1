//! Deciding without serving: described requests (`explain`,
//! `/v1/authorize`), policy test cases (`policy test`) and trail replay
//! (`policy replay`). They run the pipeline's own evaluation, so an offline
//! answer is the answer the live gateway gives.

pub mod cases;
pub mod described;
pub mod replay;
