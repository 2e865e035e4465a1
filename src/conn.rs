//! What the accepting side knows about a connection, as a leaf type: the
//! server puts a [`ConnInfo`] into every request's extensions, and later
//! stages read it from there (as axum's `ConnectInfo` does).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// What later stages know about the connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub client_addr: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The client certificate, when one was presented and verified.
    pub client_cert: Option<ClientCert>,
    /// The trusted proxy the request came through, when `client_addr` was
    /// read from its `Forwarded` / `X-Forwarded-For` header.
    pub via: Option<IpAddr>,
}

impl ConnInfo {
    /// The request's client as a trusted proxy reports it: when the peer is
    /// in `trusted`, the rightmost address of `Forwarded` (else
    /// `X-Forwarded-For`) that is not itself a trusted proxy. `None` when
    /// the peer is not trusted or names no client: then the peer is the
    /// client. Headers from untrusted peers are never read.
    #[must_use]
    pub fn behind_proxy(&self, trusted: &[IpNet], headers: &HeaderMap) -> Option<Self> {
        let peer = self.client_addr.ip();
        if !trusted.iter().any(|net| net.contains(&peer)) {
            return None;
        }
        let hops = forwarded_for(headers);
        let mut client = None;
        for hop in hops.iter().rev() {
            match hop {
                // A hop that does not read as an address: the proxy after
                // it is the last one that can be trusted to name it.
                None => break,
                Some(ip) => {
                    client = Some(*ip);
                    if !trusted.iter().any(|net| net.contains(ip)) {
                        break;
                    }
                }
            }
        }
        let client = client?;
        Some(Self {
            client_addr: SocketAddr::new(client, 0),
            tls: self.tls,
            client_cert: self.client_cert.clone(),
            via: Some(peer),
        })
    }
}

/// The addresses a request passed, client first: the `for=` values of
/// `Forwarded` (RFC 7239) if it is present, else `X-Forwarded-For`; `None`
/// for an entry that is not an IP address (`unknown`, an obfuscated name).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| {
                        let (key, value) = pair.trim().split_once('=')?;
                        key.eq_ignore_ascii_case("for").then_some(value)
                    })
                    .and_then(|value| parse_node(value.trim_matches('"')))
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .map(|hop| parse_node(hop))
        .collect()
}

/// An address as a forwarding header writes it: `203.0.113.7`,
/// `203.0.113.7:4711`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conn(peer: &str) -> ConnInfo {
        ConnInfo {
            client_addr: SocketAddr::new(peer.parse().unwrap(), 5000),
            tls: false,
            client_cert: None,
            via: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn only_a_trusted_peer_names_the_client_and_trusted_hops_are_skipped() {
        let trusted: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ];
        let client = |peer: &str, pairs: &[(&str, &str)]| {
            conn(peer)
                .behind_proxy(&trusted, &headers(pairs))
                .map(|c| (c.client_addr.ip().to_string(), c.via.unwrap().to_string()))
        };
        let xff = |v| [("x-forwarded-for", v)];
        assert_eq!(
            client("203.0.113.1", &xff("198.51.100.7")),
            None,
            "untrusted peer"
        );
        assert_eq!(
            client("127.0.0.1", &xff("198.51.100.7")),
            Some(("198.51.100.7".into(), "127.0.0.1".into()))
        );
        // The client may forge the left part; the rightmost untrusted wins.
        assert_eq!(
            client("127.0.0.1", &xff("6.6.6.6, 198.51.100.7, 10.1.2.3"))
                .unwrap()
                .0,
            "198.51.100.7"
        );
        assert_eq!(
            client(
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "198.51.100.8")
                ]
            )
            .unwrap()
            .0,
            "198.51.100.8"
        );
        assert_eq!(
            client(
                "10.0.0.5",
                &[(
                    "forwarded",
                    "for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\""
                )]
            )
            .unwrap()
            .0,
            "2001:db8::1"
        );
        // Unreadable hop: the last trusted proxy before it is the client.
        assert_eq!(
            client("127.0.0.1", &xff("unknown, 10.9.9.9")).unwrap().0,
            "10.9.9.9"
        );
        assert_eq!(client("127.0.0.1", &xff("garbage")), None);
        assert_eq!(
            client("127.0.0.1", &[]),
            None,
            "no header: the peer is the client"
        );
    }
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
