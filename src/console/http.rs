//! The console's HTTP side: who may look (a reviewer token, by header or
//! the cookie the login form sets, or a verified client certificate), the
//! security headers every answer carries, and the routes. Every route
//! reads; the only POSTs log a reviewer in and turn a raw target id into
//! its pseudonym, and neither changes anything.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::pages::{self, Page};
use super::Console;
use crate::conn::ConnInfo;
use crate::digest::sha256_hex;
use crate::response::full;
use crate::server::BoxedService;
use crate::Body;

/// The cookie the login form sets.
pub const COOKIE: &str = "eg_console";

/// The largest form accepted (login, lookup).
const FORM_LIMIT: usize = 16 << 10;

/// Pages may use the console's own stylesheet and images and nothing
/// else: no script at all, no framing, forms only back to the console.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'self'";

/// Who may use the console.
#[derive(Debug, Clone)]
pub struct Access {
    /// SHA-256 (hex) of the reviewer token.
    pub token_sha256: Option<String>,
    /// A client certificate the listener verified is enough.
    pub certificates: bool,
    /// The listener is TLS: the cookie is `Secure`.
    pub tls: bool,
}

impl Access {
    fn allows(&self, request: &Request<Incoming>) -> bool {
        if self.certificates
            && request
                .extensions()
                .get::<Arc<ConnInfo>>()
                .is_some_and(|conn| conn.client_cert.is_some())
        {
            return true;
        }
        let Some(expected) = &self.token_sha256 else {
            return false;
        };
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='));
        // Digests are compared, not tokens: timing tells nothing useful.
        [bearer, cookie]
            .into_iter()
            .flatten()
            .any(|token| self.token_matches(token, expected))
    }

    fn token_matches(&self, token: &str, expected: &str) -> bool {
        !token.is_empty() && sha256_hex(token.trim()).eq_ignore_ascii_case(expected)
    }

    fn login_cookie(&self, base: &str, token: &str) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!("{COOKIE}={token}; Path={base}/; HttpOnly; SameSite=Strict{secure}")
    }
}

/// The console as a service for `server::serve`.
pub fn service(console: Arc<Console>, access: Access) -> BoxedService {
    let access = Arc::new(access);
    BoxedService::new(tower::service_fn(move |request: Request<Incoming>| {
        let console = console.clone();
        let access = access.clone();
        async move { Ok::<_, Infallible>(respond(console, &access, request).await) }
    }))
}

/// Answers one request to the console (the admin listener calls it for
/// `/console`).
pub async fn respond(
    console: Arc<Console>,
    access: &Access,
    request: Request<Incoming>,
) -> Response<Body> {
    secured(handle(console, access, request).await)
}

/// The headers every answer carries.
fn secured(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Pages hold target ids and callers: no cache keeps them.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn handle(
    console: Arc<Console>,
    access: &Access,
    request: Request<Incoming>,
) -> Response<Body> {
    let base = console.base().to_owned();
    let Some(path) = request.uri().path().strip_prefix(base.as_str()) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::error(&base, StatusCode::NOT_FOUND, "not a console page"),
        );
    };
    if path.is_empty() {
        return redirect(&format!("{base}/"));
    }
    let path = path.to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let method = request.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/static/console.css") => {
            return answer(
                StatusCode::OK,
                "text/css; charset=utf-8",
                pages::STYLESHEET.as_bytes().to_vec(),
            );
        }
        (&Method::GET, "/login") => {
            // `?token=` is the one-time sign-in link `audit serve` prints.
            return match form_value(&query, "token") {
                Some(token) if access.token_sha256.is_some() => sign_in(access, &base, Some(token)),
                _ => html(StatusCode::OK, pages::login(&base, None)),
            };
        }
        (&Method::POST, "/login") => {
            let form = read_form(request).await;
            return sign_in(
                access,
                &base,
                form.as_deref().and_then(|f| form_value(f, "token")),
            );
        }
        _ => {}
    }
    if !access.allows(&request) {
        if method == Method::GET && !path.ends_with(".json") && !path.ends_with(".svg") {
            return redirect(&format!("{base}/login"));
        }
        return answer(
            StatusCode::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            b"a reviewer token or client certificate is required\n".to_vec(),
        );
    }
    if method == Method::POST && path == "/lookup" {
        let form = read_form(request).await.unwrap_or_default();
        let found = run(console, move |console| pages::lookup(console, &form)).await;
        return page_response(&base, found);
    }
    if method != Method::GET && method != Method::HEAD {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            b"the console only reads\n".to_vec(),
        );
    }
    let page = run(console, move |console| pages::route(console, &path, &query)).await;
    page_response(&base, page)
}

/// Renders off the async workers: a page may scan a million entries or
/// read records from disk.
async fn run(
    console: Arc<Console>,
    render: impl FnOnce(&Console) -> Page + Send + 'static,
) -> Page {
    tokio::task::spawn_blocking(move || render(&console))
        .await
        .unwrap_or_else(|e| {
            Page::Error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the page failed: {e}"),
            )
        })
}

fn page_response(base: &str, page: Page) -> Response<Body> {
    match page {
        Page::Html(markup) => html(StatusCode::OK, markup),
        Page::Svg(svg) => answer(StatusCode::OK, "image/svg+xml", svg.into_bytes()),
        Page::Download { name, json } => {
            let mut response = answer(StatusCode::OK, "application/json", json.into_bytes());
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        // Pages name each other relative to the base.
        Page::Redirect(to) => redirect(&format!("{base}/{to}")),
        Page::Error(status, message) => html(status, pages::error(base, status, &message)),
    }
}

/// The console's token signs a reviewer in; anything else is refused.
fn sign_in(access: &Access, base: &str, token: Option<String>) -> Response<Body> {
    match (token, &access.token_sha256) {
        (Some(token), Some(expected)) if access.token_matches(&token, expected) => {
            logged_in(access, base, &token)
        }
        _ => html(
            StatusCode::UNAUTHORIZED,
            pages::login(base, Some("That token is not the console's.")),
        ),
    }
}

fn logged_in(access: &Access, base: &str, token: &str) -> Response<Body> {
    let mut response = redirect(&format!("{base}/"));
    if let Ok(cookie) = HeaderValue::from_str(&access.login_cookie(base, token.trim())) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn html(status: StatusCode, markup: maud::Markup) -> Response<Body> {
    answer(
        status,
        "text/html; charset=utf-8",
        markup.into_string().into_bytes(),
    )
}

fn answer(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn redirect(to: &str) -> Response<Body> {
    let mut response = answer(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Vec::new(),
    );
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn read_form(request: Request<Incoming>) -> Option<String> {
    let body = Limited::new(request.into_body(), FORM_LIMIT)
        .collect()
        .await
        .ok()?
        .to_bytes();
    String::from_utf8(body.to_vec()).ok()
}

/// A field of an `application/x-www-form-urlencoded` text (a query or a
/// form body); the first one given, when not empty.
pub fn form_value(form: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(form.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}
