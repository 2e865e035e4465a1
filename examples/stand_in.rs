//! A minimal stand-in vendor for load measurements: answers every request
//! with 200 and Kore.ai's small JSON answer, counting what arrives but
//! keeping no copies.
//!
//! `cargo run --release --example stand_in -- 127.0.0.1:18081`

use erasure_gateway::stand_in::{Behaviour, StandIn, KORE_ERASURE_ACCEPTED};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("stand-in vendor on {}", listener.local_addr()?);
    let vendor = StandIn::builder(Behaviour::Json(KORE_ERASURE_ACCEPTED))
        .count_only()
        .serve(listener)?;
    Err(vendor.until_failure().await)
}
