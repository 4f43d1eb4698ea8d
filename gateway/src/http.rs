//! The HTTP side: routes, the requests in flight and the body's limits (`admit`), the Host and
//! Origin checks, the bearer token, each request's span and trace context (`traceparent` in and
//! out), and JSON and NDJSON answers. XML-RPC requests go on to
//! `rpc2`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tracing::Instrument;

use crate::objects::Outcome;
use crate::rpc2;
use crate::{GatewayError, GatewayState};

/// The web page, built into the binary: no CDN, no build step.
const PAGE: &str = include_str!("page.html");

pub(crate) type AppState = State<Arc<GatewayState>>;

pub(crate) fn router(shared: Arc<GatewayState>) -> Router {
    let api = Router::new()
        .route("/objects", get(objects))
        .route("/live", get(live))
        .route("/call/{name}/{method}", post(call))
        .route("/RPC2", post(rpc2::rpc2))
        .route("/RPC2/{name}", post(rpc2::rpc2_object))
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(shared.clone(), authorize));
    Router::new()
        // The page itself holds no data: it asks for the token, and sends it with each call.
        .route("/", get(page))
        .merge(api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(shared.max_body))
        .layer(middleware::from_fn_with_state(shared.clone(), admit))
        .with_state(shared)
}

/// The page, which no other site may frame (clickjacking) and which runs only its own code.
async fn page() -> impl IntoResponse {
    (
        [
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
        ],
        Html(PAGE),
    )
}

/// Every request, first: refuses ambiguous framing, takes a place among the requests in
/// flight (waiting a second at most), reads the body within the body timeout and the size
/// limit, and logs, throttled, why a request was refused or failed, with its peer.
async fn admit(State(shared): AppState, request: Request, next: Next) -> Response {
    let peer = crate::serve::peer_of(&request);
    let measured = rmi::meters::measuring()
        .then(|| (std::time::Instant::now(), route_of(request.uri().path())));
    let (span, trace) = request_span(&request, peer);
    let mut response = trace
        .scope(admitted(&shared, request, next))
        .instrument(span.clone())
        .await;
    tracing::debug!(parent: &span, status = response.status().as_u16(), "answered");
    if let Ok(traceparent) = HeaderValue::from_str(&trace.to_string()) {
        response.headers_mut().insert(TRACEPARENT, traceparent);
    }
    if let Some((started, route)) = measured {
        let status = response.status().as_u16().to_string();
        metrics::counter!(REQUESTS, "route" => route, "status" => status).increment(1);
        metrics::histogram!(REQUEST_DURATION, "route" => route)
            .record(started.elapsed().as_secs_f64());
    }
    if let Some(logged) = response.extensions().get::<crate::error::Logged>() {
        let peer = peer.map_or_else(|| "?".to_owned(), |p| p.to_string());
        if operators_business(response.status(), logged.kind) {
            crate::error::warn_refused(logged.kind, &peer, &logged.message);
        } else {
            tracing::debug!(kind = logged.kind, %peer, "{}", logged.message);
        }
    }
    response
}

/// The W3C header that carries a request's trace context in, and the gateway's span's out.
const TRACEPARENT: &str = "traceparent";

/// The span of `request` (`rmi.gateway`, at DEBUG), a child of the span its `traceparent`
/// header names, if it names one, else the first of a new trace; and its trace context, which
/// the calls it makes carry.
fn request_span(
    request: &Request,
    peer: Option<std::net::SocketAddr>,
) -> (tracing::Span, rmi::TraceContext) {
    let span = tracing::debug_span!(
        "rmi.gateway",
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_id = tracing::field::Empty,
        method = %request.method(),
        route = route_of(request.uri().path()),
        peer = peer.map(tracing::field::display),
    );
    let incoming = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(rmi::TraceContext::from_traceparent);
    let trace = rmi::TraceContext::of_span(&span, incoming);
    (span, trace)
}

/// Requests the gateway answered, by `route` and `status`.
pub const REQUESTS: &str = "rmi_gateway_requests_total";
/// How long the gateway took to answer, by `route`.
pub const REQUEST_DURATION: &str = "rmi_gateway_request_duration_seconds";

/// The route of `path`, as the metrics name it: the routes' patterns, never the names and
/// methods in a path, which a client chooses.
fn route_of(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/objects" => "/objects",
        "/live" => "/live",
        "/RPC2" => "/RPC2",
        _ if path.starts_with("/call/") => "/call/{name}/{method}",
        _ if path.starts_with("/RPC2/") => "/RPC2/{name}",
        _ => "other",
    }
}

async fn admitted(shared: &GatewayState, request: Request, next: Next) -> Response {
    // A request with both Content-Length and Transfer-Encoding (which a proxy in front may
    // read one way and the gateway another: request smuggling) never gets here as such: hyper
    // reads it as chunked and closes the connection after the answer (RFC 9112, 6.1), so
    // nothing can ride behind it.
    let limit = shared.limits.max_requests_in_flight;
    let permit = match shared.in_flight.try_acquire() {
        Ok(permit) => permit,
        Err(_) => {
            let waiting = shared.in_flight.acquire();
            match tokio::time::timeout(IN_FLIGHT_WAIT, waiting).await {
                Ok(Ok(permit)) => permit,
                _ => return GatewayError::Busy { limit }.into_response(),
            }
        }
    };
    // A decoded body can take many times its size (a megabyte of `[]` is a third of a million
    // values): big ones (or ones of unknown length) take turns, one per core, from before
    // their body is read to the end of their call. Small ones, the usual calls, do not wait.
    let big = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<usize>().ok())
        .is_none_or(|length| length > BIG_BODY)
        && request.method() != axum::http::Method::GET;
    let _turn = if big {
        match tokio::time::timeout(shared.limits.body_timeout, shared.decoding.acquire()).await {
            Ok(Ok(turn)) => Some(turn),
            _ => return GatewayError::Busy { limit }.into_response(),
        }
    } else {
        None
    };
    let (parts, body) = request.into_parts();
    let after = shared.limits.body_timeout;
    let reading = axum::body::to_bytes(body, shared.max_body);
    let body = match tokio::time::timeout(after, reading).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return read_error(shared, &error).into_response(),
        Err(_) => return GatewayError::BodyTimeout { after }.into_response(),
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    drop(permit);
    response
}

/// A body longer than this (or of unknown length) waits for its turn among those decoded
/// (`GatewayState::decoding`), and keeps it until its answer: its decoded arguments may be
/// many times its size.
pub(crate) const BIG_BODY: usize = 64 * 1024;

/// Whether a failed request is worth a warning: refusals and the gateway's own failures are
/// an operator's business; a caller's mistakes (a wrong name, method or argument, a method's
/// own `Err`) are the caller's.
fn operators_business(status: StatusCode, kind: &str) -> bool {
    let callers_mistake = matches!(status.as_u16(), 404 | 422) || kind == "bad_arguments";
    status.is_server_error() || !callers_mistake
}

/// How long a request waits for a place among those in flight before it is answered 503.
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a body could not be read: over the limit (413), or broken off.
fn read_error(shared: &GatewayState, error: &axum::Error) -> GatewayError {
    let over = std::error::Error::source(error)
        .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
    if over {
        GatewayError::TooLarge {
            limit: shared.max_body,
        }
    } else {
        GatewayError::BadRequest(format!("the request body could not be read: {error}"))
    }
}

async fn not_found(request: Request) -> GatewayError {
    GatewayError::NotFound(format!("{} {}", request.method(), request.uri().path()))
}

/// Refuses requests for a host the gateway does not answer for, requests that a browser sends
/// from a page of another origin, and requests without the gateway's bearer token, when it has
/// one.
async fn authorize(State(shared): AppState, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned());
    if let Some(host) = host.filter(|host| !known_host(host, &shared.allowed_hosts)) {
        return GatewayError::UnknownHost { host }.into_response();
    }
    // A browser may send a POST to any address from any page (a form, or a fetch with a plain
    // text body); it names the page's origin in `Origin`. Programs (curl, Python) send none.
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let host = request.headers().get(header::HOST);
        let from_here = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .zip(host.and_then(|host| host.to_str().ok()))
            .is_some_and(|((_, origin_host), host)| origin_host.eq_ignore_ascii_case(host));
        if !from_here {
            let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            return GatewayError::CrossOrigin { origin }.into_response();
        }
    }
    if let Some(token) = &shared.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer);
        let refused = match given {
            None => Some(
                "this gateway wants a bearer token: send the header `Authorization: Bearer TOKEN`",
            ),
            Some(given) if !same_secret(given.trim().as_bytes(), token.as_bytes()) => {
                Some("the bearer token is not this gateway's")
            }
            Some(_) => None,
        };
        if let Some(reason) = refused {
            return GatewayError::Unauthorized(reason).into_response();
        }
    }
    next.run(request).await
}

/// The token of an `Authorization` header's `Bearer` credentials; the scheme's case does not
/// matter (RFC 7235, 2.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// Whether `host` (a `Host` header: a name or address, and perhaps a port) is an IP address,
/// `localhost`, or one of `allowed` (whose ports, if given, are ignored too).
fn known_host(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed
            .iter()
            .any(|a| host_name(a).eq_ignore_ascii_case(name))
}

/// The name or address of `host`, without its port: `[::1]:8080` is `::1`.
pub(crate) fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    }
}

/// Compares secrets in a time that does not depend on where they first differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// The body, or why it could not be read (over the limit: 413).
pub(crate) fn body(
    shared: &GatewayState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, GatewayError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GatewayError::TooLarge {
                limit: shared.max_body,
            }
        } else {
            GatewayError::BadRequest(rejection.body_text())
        }
    })
}

async fn live(State(shared): AppState) -> Json<Value> {
    Json(shared.live.watch(&shared.objects))
}

async fn objects(State(shared): AppState) -> Result<Json<Value>, GatewayError> {
    Ok(Json(Value::Array(shared.objects.list().await?)))
}

async fn call(
    State(shared): AppState,
    Path((name, method)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    let raw = body(&shared, raw)?;
    let how = "send the arguments as a JSON array, such as [\"Ruvika\"] (an empty body is [])";
    let args = if raw.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        match serde_json::from_slice(&raw) {
            Ok(Value::Array(args)) => args,
            Ok(other) => {
                return Err(GatewayError::BadRequest(format!(
                    "the body is {}, not an array: {how}",
                    json_kind(&other)
                )))
            }
            Err(e) => {
                return Err(GatewayError::BadRequest(format!(
                    "the body is not JSON ({e}): {how}"
                )))
            }
        }
    };
    drop(raw);
    match shared.objects.call(&name, &method, args).await? {
        Outcome::Value(value) => Ok(Json(value).into_response()),
        Outcome::Stream(items) => Ok(ndjson(name, method, items)),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A stream as newline-delimited JSON, each item written when the server makes it.
///
/// When the HTTP client goes away, hyper drops the body, which drops the `rmi::Stream`: that
/// closes it on the daemon and stops its producer. A stream that fails halfway ends the
/// response without its last chunk, so the client sees a broken transfer, never a success.
fn ndjson(name: String, method: String, items: rmi::Stream<Value>) -> Response {
    let lines = futures::stream::unfold(Some(items), move |items| {
        let (name, method) = (name.clone(), method.clone());
        async move {
            let mut items = items?;
            match items.next().await? {
                Ok(item) => {
                    let mut line = item.to_string().into_bytes();
                    line.push(b'\n');
                    Some((Ok(Bytes::from(line)), Some(items)))
                }
                Err(error) => {
                    tracing::warn!(%name, %method, "the stream broke: {error}");
                    Some((Err(GatewayError::from(error)), None))
                }
            }
        }
    });
    let mut response = Body::from_stream(lines).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    // Proxies and browsers must pass each line on as it comes.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_addresses_localhost_or_allowed() {
        let allowed = ["gateway.example".to_owned()];
        for host in [
            "127.0.0.1:8080",
            "[::1]:80",
            "localhost:1",
            "LOCALHOST",
            "10.0.0.1",
        ] {
            assert!(known_host(host, &[]), "{host}");
        }
        assert!(known_host("Gateway.example:8080", &allowed));
        assert!(!known_host("evil.example:8080", &allowed));
        assert!(!known_host("localhost.evil.example", &[]));
        // An allowed host given with a port (as the refusal once suggested) allows the name.
        assert!(known_host(
            "gw.example:80",
            &["gw.example:34057".to_owned()]
        ));
    }

    #[test]
    fn the_bearer_scheme_is_read_whatever_its_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
    }
}
