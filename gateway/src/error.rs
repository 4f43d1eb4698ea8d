//! [`GatewayError`]: why a request through the gateway failed, with the HTTP status and the
//! XML-RPC fault code that say so.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// XML-RPC fault codes, from the "specification for fault code interoperability" that most
/// XML-RPC libraries follow, so that clients can tell kinds of failure apart.
pub mod fault {
    /// The request is not well-formed XML.
    pub const PARSE_ERROR: i32 = -32700;
    /// The XML is not an XML-RPC `methodCall`.
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method (or object, or one the gateway does not expose).
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// The parameters do not fit the method.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The gateway failed.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The method ran and returned its own error (`Err`).
    pub const APPLICATION_ERROR: i32 = -32500;
    /// The object could not be reached, or did not answer in time.
    pub const TRANSPORT_ERROR: i32 = -32300;
}

/// Why a request through the gateway failed.
///
/// Each has a `kind` (a stable, snake_case word for programs), an HTTP status, and an XML-RPC
/// fault code; its message says what happened and what to do.
///
/// ```
/// use rmi_gateway::GatewayError;
/// let error = GatewayError::NotExposed { name: "bank".into() };
/// assert_eq!(error.kind(), "not_exposed");
/// assert_eq!(error.status().as_u16(), 403);
/// assert!(error.to_string().contains("--expose"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The request body is not what the endpoint reads (JSON, or XML-RPC).
    #[error("{0}")]
    BadRequest(String),
    /// An XML-RPC request that is not well-formed XML.
    #[error("the request is not well-formed XML: {0}")]
    BadXml(String),
    /// The gateway handles as many requests as it allows at once (`Limits`).
    #[error("the gateway handles {limit} requests at once, the most it allows; retry in a moment")]
    Busy {
        /// The limit.
        limit: usize,
    },
    /// The request's body did not arrive in time (`Limits::body_timeout`).
    #[error("the request body did not arrive within {after:?}")]
    BodyTimeout {
        /// How long the gateway waited.
        after: std::time::Duration,
    },
    /// An rmi failure whose message had the objects' internal addresses taken out (see
    /// `Config::show_uris`): its kind, and the message as told.
    #[error("{message}")]
    Hidden {
        /// The kind of the rmi failure (as [`kind`](GatewayError::kind) says it).
        kind: &'static str,
        /// The message, without addresses.
        message: String,
    },
    /// The request body is longer than `--max-body`.
    #[error("the request body is over the gateway's limit of {limit} bytes (--max-body)")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The gateway wants a bearer token and the request has none, or another.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A browser sent the request from a page of another origin: a site the user visits
    /// cannot make their browser call the gateway.
    #[error("requests from pages of other origins ({origin}) are refused; call the gateway from its own page, or from a program")]
    CrossOrigin {
        /// The `Origin` the browser sent.
        origin: String,
    },
    /// The request names a host the gateway does not answer for (its `Host` header).
    #[error("the gateway does not answer for the host '{host}'; reach it by IP address or localhost, or start it with --allow-host {}", crate::http::host_name(host))]
    UnknownHost {
        /// The host the request named.
        host: String,
    },
    /// The name is not one `--expose` allows.
    #[error("'{name}' is not exposed by this gateway; its --expose option says which names are")]
    NotExposed {
        /// The name asked for.
        name: String,
    },
    /// The name is not registered in the name server.
    #[error("the name '{name}' is not registered in the name server")]
    UnknownName {
        /// The name asked for.
        name: String,
    },
    /// The object has no method of that name.
    #[error("'{name}' (a {trait_name}) has no method '{method}'; it has: {known}")]
    UnknownMethod {
        /// The object's name.
        name: String,
        /// Its trait.
        trait_name: String,
        /// The method asked for.
        method: String,
        /// The methods it has, comma-separated.
        known: String,
    },
    /// The arguments do not fit the method: their number or a type.
    #[error("{0}")]
    BadArguments(String),
    /// The method ran and returned `Err`: its value is `error`, as JSON.
    #[error("'{method}' returned an error: {error}")]
    MethodError {
        /// The method.
        method: String,
        /// The method's error, as JSON.
        error: Value,
    },
    /// A stream's result held more items than the gateway gathers for one XML-RPC reply.
    #[error("the stream '{method}' returned has more than {limit} items; read it as NDJSON with POST /call/NAME/METHOD instead")]
    StreamTooLong {
        /// The method.
        method: String,
        /// How many items the gateway gathers.
        limit: usize,
    },
    /// No route for this path.
    #[error("no such page: {0}; see GET / for what this gateway offers")]
    NotFound(String),
    /// rmi failed: the name server or the object cannot be reached, the call timed out, the
    /// method panicked, …
    #[error(transparent)]
    Rmi(#[from] rmi::Error),
}

impl GatewayError {
    /// A stable word for the kind of failure, for programs: the `kind` of the JSON body.
    pub fn kind(&self) -> &'static str {
        use rmi::ErrorKind as E;
        match self {
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::BadXml(_) => "bad_xml",
            GatewayError::TooLarge { .. } => "too_large",
            GatewayError::Busy { .. } => "gateway_busy",
            GatewayError::BodyTimeout { .. } => "body_timeout",
            GatewayError::Hidden { kind, .. } => kind,
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::NotExposed { .. } => "not_exposed",
            GatewayError::CrossOrigin { .. } => "cross_origin",
            GatewayError::UnknownHost { .. } => "unknown_host",
            GatewayError::UnknownName { .. } => "unknown_name",
            GatewayError::UnknownMethod { .. } => "unknown_method",
            GatewayError::BadArguments(_) => "bad_arguments",
            GatewayError::MethodError { .. } => "method_error",
            GatewayError::StreamTooLong { .. } => "stream_too_long",
            GatewayError::NotFound(_) => "not_found",
            GatewayError::Rmi(error) => match error.kind() {
                E::Timeout { .. } => "timeout",
                E::Busy { .. } => "busy",
                E::Panicked { .. } => "panicked",
                E::NameNotFound { .. } => "unknown_name",
                E::BadArgument { .. } | E::BadCall { .. } => "bad_arguments",
                E::Connect { .. }
                | E::Disconnected { .. }
                | E::NameServerUnreachable { .. }
                | E::UnknownObject { .. }
                | E::Authentication { .. }
                | E::Tls { .. } => "unreachable",
                E::StreamClosed { .. }
                | E::StreamBroken { .. }
                | E::ProducerFailed { .. }
                | E::UploadBroken { .. } => "stream_broken",
                _ => "rmi_error",
            },
        }
    }

    /// The HTTP status that answers it.
    pub fn status(&self) -> StatusCode {
        match self.kind() {
            "bad_request" | "bad_xml" | "bad_arguments" => StatusCode::BAD_REQUEST,
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "body_timeout" => StatusCode::REQUEST_TIMEOUT,
            "gateway_busy" => StatusCode::SERVICE_UNAVAILABLE,
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "not_exposed" | "cross_origin" | "unknown_host" => StatusCode::FORBIDDEN,
            "unknown_name" | "unknown_method" | "not_found" => StatusCode::NOT_FOUND,
            // The request was right and the method ran: it refused this input.
            "method_error" => StatusCode::UNPROCESSABLE_ENTITY,
            "timeout" => StatusCode::GATEWAY_TIMEOUT,
            "busy" => StatusCode::SERVICE_UNAVAILABLE,
            "unreachable" | "stream_broken" => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The XML-RPC fault code that answers it (see [`fault`]).
    pub fn fault_code(&self) -> i32 {
        match self.kind() {
            "bad_request" => fault::INVALID_REQUEST,
            "bad_xml" => fault::PARSE_ERROR,
            "not_exposed" | "unknown_name" | "unknown_method" | "not_found" => {
                fault::METHOD_NOT_FOUND
            }
            "bad_arguments" => fault::INVALID_PARAMS,
            "method_error" | "stream_too_long" | "panicked" => fault::APPLICATION_ERROR,
            "timeout" | "busy" | "gateway_busy" | "unreachable" | "stream_broken" => {
                fault::TRANSPORT_ERROR
            }
            _ => fault::INTERNAL_ERROR,
        }
    }

    /// The JSON body: `{"kind": …, "message": …}`, and the method's own error as `error`.
    pub fn body(&self) -> Value {
        let mut body = json!({ "kind": self.kind(), "message": self.to_string() });
        if let GatewayError::MethodError { error, .. } = self {
            body["error"] = error.clone();
        }
        body
    }

    /// [`body`](GatewayError::body) as JSON text, with `kind` first and `message` next, for a
    /// person reading it (a `serde_json::Value` would sort the keys).
    fn body_text(&self) -> String {
        let mut text = format!(
            "{{\"kind\":{},\"message\":{}",
            Value::from(self.kind()),
            Value::from(self.to_string())
        );
        if let GatewayError::MethodError { error, .. } = self {
            text.push_str(&format!(",\"error\":{error}"));
        }
        text.push('}');
        text
    }

    /// `method` is not one of the methods of `name`, whose trait is `descriptor`.
    pub(crate) fn unknown_method(
        name: &str,
        descriptor: &rmi::TraitDescriptor,
        method: &str,
    ) -> GatewayError {
        let known: Vec<&str> = descriptor.methods.iter().map(|m| &*m.name).collect();
        GatewayError::UnknownMethod {
            name: name.into(),
            trait_name: descriptor.name.to_string(),
            method: method.into(),
            known: known.join(", "),
        }
    }

    /// Whether the cached proxy of the object should be dropped: the object may have moved.
    pub(crate) fn object_gone(&self) -> bool {
        let GatewayError::Rmi(error) = self else {
            return false;
        };
        matches!(
            error.kind(),
            rmi::ErrorKind::Connect { .. }
                | rmi::ErrorKind::Disconnected { .. }
                | rmi::ErrorKind::UnknownObject { .. }
        )
    }
}

/// What the log says of a refused or failed request: its kind and message, for the middleware
/// that knows the peer to write (`http::admit`), throttled.
#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

/// Warns that a request or connection from `peer` was refused or failed as `kind`, at most once
/// a second for each kind (with the count of those left out): a flood of bad requests gives a
/// short log that still says what happened.
pub(crate) fn warn_refused(kind: &'static str, peer: impl std::fmt::Display, message: &str) {
    static THROTTLES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<&'static str, &'static rmi::Throttle>>,
    > = std::sync::OnceLock::new();
    let throttle = {
        let mut throttles = THROTTLES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // One per kind, made once: the kinds are a fixed set of words.
        *throttles
            .entry(kind)
            .or_insert_with(|| Box::leak(Box::new(rmi::Throttle::new())))
    };
    if let Some(suppressed) = throttle.allow() {
        tracing::warn!(kind, %peer, suppressed, "{}", rmi::one_line(message));
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        let logged = Logged {
            kind: self.kind(),
            message: self.to_string(),
        };
        let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
        let mut response = (status, json, self.body_text()).into_response();
        response.extensions_mut().insert(logged);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
