//! Accepting connections: TCP, optional TLS (with client certificates), and
//! hyper's HTTP/1.1 + HTTP/2 server, with graceful shutdown.
//!
//! Runs any tower service, boxed ([`BoxedService`]) so that hyper's
//! connection machinery is compiled once for the proxy and the admin
//! listener alike; each request gets the connection's [`ConnInfo`] in its
//! extensions. The listener is passed in, so tests hand
//! it `127.0.0.1:0`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

use http::{Request, Response};
use hyper::body::Incoming;
use tower::util::BoxCloneService;
use tower::ServiceBuilder;

use crate::conn::{ClientCert, ConnInfo};
use crate::{tls, Body};

/// Timeouts of the accepting side.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// Time allowed for the TLS handshake and for each request head.
    pub header_read_timeout: Duration,
    /// Time in-flight requests get to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// HTTP/2 streams open at once per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams reset by the client before being accepted.
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams reset by the gateway for client errors.
    pub h2_max_local_error_reset_streams: usize,
}

/// A service `serve` runs. Boxed: one dynamic call per request, against
/// compiling hyper's HTTP/1 and HTTP/2 servers once per service type.
pub type BoxedService = BoxCloneService<Request<Incoming>, Response<Body>, Infallible>;

/// Serves `service` on `listener` until `shutdown` resolves, then stops
/// accepting and waits up to `shutdown_grace` for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: BoxedService,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(settings.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(settings.h2_max_local_error_reset_streams);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, client_addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let service = service.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some((io, conn)) =
                establish(stream, client_addr, tls, settings.header_read_timeout).await
            else {
                return;
            };
            let conn = Arc::new(conn);
            // Every request carries its connection's facts.
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(conn.clone());
                    request
                })
                .service(service);
            let service = TowerToHyperService::new(service);
            let connection = builder.serve_connection(io, service).into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%client_addr, error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        grace = ?settings.shutdown_grace,
        "stopped accepting; finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections finished"),
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!("shutdown grace expired; closing remaining connections");
        }
    }
}

/// A client connection: plain TCP (HTTP/1.1, or HTTP/2 with prior knowledge)
/// or TLS (ALPN picks HTTP/2 or HTTP/1.1).
type Io = TokioIo<Either<TcpStream, Box<tokio_rustls::server::TlsStream<TcpStream>>>>;

async fn establish(
    stream: TcpStream,
    client_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
) -> Option<(Io, ConnInfo)> {
    let Some(acceptor) = tls else {
        let conn = ConnInfo {
            client_addr,
            tls: false,
            client_cert: None,
            via: None,
        };
        return Some((TokioIo::new(Either::Left(stream)), conn));
    };
    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%client_addr, %error, "TLS handshake refused");
            return None;
        }
        Err(_) => {
            tracing::info!(%client_addr, "TLS handshake timed out");
            return None;
        }
    };
    // rustls only completes the handshake with a certificate the configured
    // verifier accepted, so a presented certificate here is a verified one.
    let client_cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| ClientCert {
            subject: tls::certificate_subject(leaf).unwrap_or_default(),
            sans: tls::certificate_sans(leaf),
        });
    let conn = ConnInfo {
        client_addr,
        tls: true,
        client_cert,
        via: None,
    };
    Some((TokioIo::new(Either::Right(Box::new(stream))), conn))
}
