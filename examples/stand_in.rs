//! A minimal stand-in vendor for load measurements: answers every request
//! with 200 and a small JSON body, as fast as hyper can.
//!
//! `cargo run --release --example stand_in -- 127.0.0.1:18081`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("stand-in vendor on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    // Read the body so the client side sees a complete exchange.
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(
                                br#"{"requestId":"eud-123","status":"in-progress"}"#,
                            )))
                            .unwrap_or_default(),
                    )
                },
            );
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
