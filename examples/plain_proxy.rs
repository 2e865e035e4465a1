//! A baseline for load measurements: the least a hyper reverse proxy can
//! do — forward every request to one upstream with hyper-util's pooled
//! client, no routing, no header rewriting, no limits, no metrics.
//!
//! `cargo run --release --example plain_proxy -- 127.0.0.1:18082 http://127.0.0.1:18081`

use std::convert::Infallible;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18082".to_owned());
    let upstream: http::Uri = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:18081".to_owned())
        .parse()
        .map_err(std::io::Error::other)?;
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("plain proxy on {} → {upstream}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (client, upstream) = (client.clone(), upstream.clone());
                    async move {
                        let (mut parts, body) = req.into_parts();
                        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                        parts.uri = format!("{upstream}{}", path.trim_start_matches('/'))
                            .parse()
                            .unwrap_or_default();
                        parts.headers.remove(http::header::HOST);
                        let req = hyper::Request::from_parts(parts, body.boxed());
                        let response = match client.request(req).await {
                            Ok(r) => r.map(|b| b.boxed()),
                            Err(_) => hyper::Response::builder()
                                .status(502)
                                .body(http_body_util::Empty::new().map_err(|n| match n {}).boxed())
                                .unwrap_or_default(),
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
