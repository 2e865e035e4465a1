//! What the accepting side knows about a connection, as a leaf type: the
//! server puts a [`ConnInfo`] into every request's extensions, and later
//! stages read it from there (as axum's `ConnectInfo` does).

use std::net::SocketAddr;

/// What later stages know about the connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub client_addr: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The client certificate, when one was presented and verified.
    pub client_cert: Option<ClientCert>,
}

/// A verified client certificate.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// Its subject, RFC 4514 style (`CN=…, O=…`).
    pub subject: String,
    /// Its subject alternative names: DNS names, e-mail addresses and URIs,
    /// as written.
    pub sans: Vec<String>,
}
