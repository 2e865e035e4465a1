//! Routing: which upstream a request goes to, by `Host` and/or path prefix.
//!
//! Pure: a table built from config, and a lookup that returns the upstream's
//! index and the path with the prefix stripped.

use crate::config::UpstreamConfig;

/// One routing rule.
#[derive(Debug, Clone)]
struct Route {
    upstream: usize,
    host: Option<String>,
    prefix: Option<String>,
}

/// Why a request could not be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// No rule matches.
    NotFound,
    /// The path holds dot segments (literal or percent-encoded): they could
    /// climb out of the route prefix once the upstream normalises the path.
    DotSegment {
        /// The upstream whose rule the raw path matched, if any.
        upstream: Option<usize>,
    },
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// A routed request: the upstream's index and the path to forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed<'a> {
    /// Index into the configured upstreams.
    pub upstream: usize,
    /// The request path with the route prefix removed (at least `/`).
    pub path: &'a str,
}

impl RouteTable {
    /// Builds the table. Rules that name a host are tried first, then longer
    /// prefixes before shorter ones, so the most specific rule wins.
    pub fn new(upstreams: &[UpstreamConfig]) -> Self {
        let mut routes: Vec<Route> = upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| Route {
                upstream: i,
                host: u.host.as_ref().map(|h| h.to_ascii_lowercase()),
                prefix: u.path_prefix.clone().filter(|p| p != "/"),
            })
            .collect();
        routes.sort_by_key(|r| {
            (
                r.host.is_none(),
                std::cmp::Reverse(r.prefix.as_ref().map_or(0, String::len)),
            )
        });
        Self { routes }
    }

    /// Finds the upstream for a request.
    ///
    /// # Errors
    /// [`RouteError::NotFound`] when no rule matches, [`RouteError::DotSegment`]
    /// for paths that could escape their prefix.
    pub fn resolve<'a>(&self, host: Option<&str>, path: &'a str) -> Result<Routed<'a>, RouteError> {
        let routed = self.lookup(host, path);
        if has_dot_segment(path) {
            return Err(RouteError::DotSegment {
                upstream: routed.ok().map(|r| r.upstream),
            });
        }
        routed
    }

    fn lookup<'a>(&self, host: Option<&str>, path: &'a str) -> Result<Routed<'a>, RouteError> {
        let host = host.map(strip_port);
        for route in &self.routes {
            if let Some(want) = &route.host {
                if !host.is_some_and(|h| h.eq_ignore_ascii_case(want)) {
                    continue;
                }
            }
            let rest = match &route.prefix {
                None => Some(path),
                Some(prefix) => path
                    .strip_prefix(prefix.as_str())
                    .filter(|rest| rest.is_empty() || rest.starts_with('/')),
            };
            if let Some(rest) = rest {
                let rest = if rest.is_empty() { "/" } else { rest };
                return Ok(Routed {
                    upstream: route.upstream,
                    path: rest,
                });
            }
        }
        Err(RouteError::NotFound)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Whether a segment is `.` or `..`, literally or percent-encoded
/// (`%2e`, `%2E`, mixed). Runs on every request: no allocation.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let mut rest = segment.as_bytes();
        let mut dots = 0;
        while !rest.is_empty() {
            if rest[0] == b'.' {
                rest = &rest[1..];
            } else if rest.len() >= 3
                && rest[0] == b'%'
                && rest[1] == b'2'
                && rest[2].eq_ignore_ascii_case(&b'e')
            {
                rest = &rest[3..];
            } else {
                return false;
            }
            dots += 1;
        }
        dots == 1 || dots == 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(name: &str, prefix: Option<&str>, host: Option<&str>) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            profile: None,
            url: "http://127.0.0.1:1".parse().unwrap(),
            path_prefix: prefix.map(Into::into),
            host: host.map(Into::into),
            ca: None,
            credential: None,
            track_completion: None,
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(&[
            upstream("seam", Some("/seam"), None),
            upstream("seam-v2", Some("/seam/v2"), None),
            upstream("kore", None, Some("kore.gw.internal")),
            upstream("bp", Some("/bp"), Some("bp.gw.internal")),
        ])
    }

    #[test]
    fn routes_by_prefix_host_or_both() {
        let t = table();
        type Case<'a> = (
            Option<&'a str>,
            &'a str,
            Result<(usize, &'a str), RouteError>,
        );
        const DOT_SEAM: RouteError = RouteError::DotSegment { upstream: Some(0) };
        let cases: &[Case] = &[
            (
                None,
                "/seam/customers/delete_data",
                Ok((0, "/customers/delete_data")),
            ),
            (None, "/seam", Ok((0, "/"))),
            (None, "/seam/", Ok((0, "/"))),
            (None, "/seam/v2/x", Ok((1, "/x"))),
            (None, "/seamless", Err(RouteError::NotFound)),
            (None, "/SEAM/x", Err(RouteError::NotFound)),
            (Some("kore.gw.internal"), "/api/x", Ok((2, "/api/x"))),
            (Some("KORE.gw.internal:8443"), "/api/x", Ok((2, "/api/x"))),
            (
                Some("bp.gw.internal"),
                "/bp/customer/1",
                Ok((3, "/customer/1")),
            ),
            (
                Some("bp.gw.internal"),
                "/customer/1",
                Err(RouteError::NotFound),
            ),
            (Some("other"), "/api/x", Err(RouteError::NotFound)),
            (None, "/seam/../kore/x", Err(DOT_SEAM)),
            (None, "/seam/%2e%2E/x", Err(DOT_SEAM)),
            (None, "/seam/./x", Err(DOT_SEAM)),
            (
                None,
                "/../seam/x",
                Err(RouteError::DotSegment { upstream: None }),
            ),
            (None, "/seam/.well-known", Ok((0, "/.well-known"))),
            (None, "/seam/.%2e/x", Err(DOT_SEAM)),
            (None, "/seam/.../x", Ok((0, "/.../x"))),
            (None, "/seam/%2ex/y", Ok((0, "/%2ex/y"))),
        ];
        for (host, path, want) in cases {
            let got = t.resolve(*host, path).map(|r| (r.upstream, r.path));
            assert_eq!(&got, want, "{host:?} {path}");
        }
    }

    #[test]
    fn ipv6_host_port_is_stripped() {
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
