//! The errors of a call, each naming the URI and method, made from what went wrong.

use std::time::Duration;

use crate::channel::{Failure, HelloRefused};

use super::bind::{Bound, Route};
use crate::wire;
use crate::{Error, ErrorKind};

pub(crate) fn method_name(bound: &Bound, method: usize) -> String {
    match bound.descriptor.methods.get(method) {
        Some(descriptor) => descriptor.name.to_string(),
        None => format!("#{method}"),
    }
}

pub(super) fn route(bound: &Bound, method: usize) -> Error {
    match (
        bound.routes.get(method),
        bound.descriptor.methods.get(method),
    ) {
        (Some(Route::Mismatch(server)), Some(client)) => Error::new(ErrorKind::SignatureMismatch {
            uri: bound.uri_text.clone(),
            method: method_name(bound, method),
            client: client.signature(),
            server: server.clone(),
        }),
        (_, Some(client)) if bound.connection.is_pyro5() => Error::new(ErrorKind::BadCall {
            uri: bound.uri_text.clone(),
            method: method_name(bound, method),
            reason: format!(
                "the Pyro5 object exposes no method '{}' (nor '{}'): check the name, and that the Python method is exposed (@expose)",
                client.name,
                crate::pyro_values::python_name(&client.name)
            ),
        }),
        _ => Error::new(ErrorKind::UnknownMethod {
            uri: bound.uri_text.clone(),
            trait_name: bound.descriptor.name.to_string(),
            method: method_name(bound, method),
        }),
    }
}

pub(crate) fn codec(bound: &Bound, method: usize, action: &'static str, message: String) -> Error {
    Error::new(ErrorKind::Codec {
        uri: bound.uri_text.clone(),
        method: method_name(bound, method),
        action: action.into(),
        message,
    })
}

/// The error for arguments of type `A` that did not encode: nothing was sent.
pub(crate) fn unencodable<A: ?Sized>(bound: &Bound, method: usize, reason: String) -> Error {
    Error::new(ErrorKind::Unencodable {
        uri: bound.uri_text.clone(),
        method: method_name(bound, method),
        what: "the arguments of".into(),
        type_name: std::any::type_name::<A>().into(),
        reason,
    })
}

/// The error for a value too large to travel: `what` (`the arguments of`, …) `method`.
pub(crate) fn too_large(
    bound: &Bound,
    method: usize,
    what: &'static str,
    limit: usize,
    sent: bool,
) -> Error {
    Error::new(ErrorKind::TooLarge {
        uri: bound.uri_text.clone(),
        method: method_name(bound, method),
        what: what.into(),
        limit: limit as u64,
        sent,
    })
}

/// What a request's `reply` gives the caller: the result, or the error for the server's
/// fault or for the transport's failure.
pub(crate) fn outcome(
    bound: &Bound,
    method: usize,
    reply: Result<wire::Reply, (Failure, Duration)>,
) -> Result<wire::Payload, Error> {
    match reply {
        Ok(Ok(payload)) => Ok(payload),
        Ok(Err(server_fault)) => Err(fault(bound, method, server_fault)),
        Err((failure, waited)) => Err(transport(bound, method, failure, waited)),
    }
}

/// The error for the server's `fault`.
pub(crate) fn fault(bound: &Bound, method: usize, fault: wire::Fault) -> Error {
    let uri = bound.uri_text.clone();
    match fault {
        wire::Fault::TooLarge { limit } => {
            too_large(bound, method, "the result of", limit as usize, true)
        }
        wire::Fault::UnknownObject => Error::new(ErrorKind::UnknownObject {
            uri,
            id: bound.uri.id().to_owned(),
        }),
        wire::Fault::UnknownMethod => Error::new(ErrorKind::UnknownMethod {
            uri,
            trait_name: bound.descriptor.name.to_string(),
            method: method_name(bound, method),
        }),
        wire::Fault::BadArguments(message) => codec(
            bound,
            method,
            "decode (on the server) the arguments of",
            message,
        ),
        wire::Fault::BadArgument { index, message } => Error::new(ErrorKind::BadArgument {
            uri,
            method: method_name(bound, method),
            param: bound
                .descriptor
                .methods
                .get(method)
                .and_then(|m| m.params.get(index as usize))
                .map_or_else(|| format!("#{index}"), |p| p.to_string()),
            message,
        }),
        wire::Fault::BadResult(message) => codec(
            bound,
            method,
            "encode (on the server) the result of",
            message,
        ),
        wire::Fault::Panicked(message) => Error::new(ErrorKind::Panicked {
            uri,
            method: method_name(bound, method),
            message,
        }),
        wire::Fault::Stopping => Error::new(ErrorKind::Stopping {
            uri,
            method: method_name(bound, method),
        }),
        wire::Fault::Cancelled => Error::new(ErrorKind::Cancelled {
            uri,
            method: method_name(bound, method),
        }),
        wire::Fault::Busy => Error::new(ErrorKind::Busy {
            uri,
            method: method_name(bound, method),
        }),
        wire::Fault::UnknownStream => Error::new(ErrorKind::StreamClosed {
            uri,
            method: method_name(bound, method),
        }),
        wire::Fault::StreamBroken(reason) => Error::new(ErrorKind::StreamBroken {
            uri,
            method: method_name(bound, method),
            reason,
        }),
    }
}

/// `waited`: how long the call could wait, its own timeout or what was left of the deadline
/// of the call being served.
pub(crate) fn transport(bound: &Bound, method: usize, failure: Failure, waited: Duration) -> Error {
    let uri = bound.uri_text.clone();
    let method = method_name(bound, method);
    match failure {
        Failure::Deadline => Error::new(ErrorKind::Timeout {
            uri,
            method,
            after: waited,
        }),
        Failure::Server(e) if e.kind == std::io::ErrorKind::TimedOut => {
            Error::new(ErrorKind::Timeout {
                uri,
                method,
                after: waited,
            })
        }
        Failure::Server(e) => Error::new(ErrorKind::Disconnected {
            uri,
            method,
            reason: format!("the daemon gave up on the call: {}", e.detail),
            cause: None,
        }),
        Failure::Lost(Some(why)) if refusal(&why).is_some() => {
            let refused = refusal(&why).expect("just seen");
            // Read after the first requests went out: the handshake's error, as if read first.
            super::bindings::forget_no_key(refused.endpoint());
            refused.error()
        }
        Failure::Raised(exception) => {
            let crate::pyro_values::Exception {
                class,
                message,
                traceback,
                ..
            } = *exception;
            Error::new(ErrorKind::Raised {
                uri,
                method,
                class,
                message,
                traceback,
            })
        }
        Failure::Unreadable(message) => Error::new(ErrorKind::Codec {
            uri,
            method,
            action: "read the Pyro5 reply of".into(),
            message,
        }),
        Failure::Lost(why) => Error::new(ErrorKind::Disconnected {
            uri,
            method,
            reason: lost(why.as_deref()),
            cause: why.map(|e| Box::new(e) as crate::error::Cause),
        }),
    }
}

/// The daemon's refusal in its hello, if that is what ended the connection.
fn refusal(error: &std::io::Error) -> Option<&HelloRefused> {
    error.get_ref()?.downcast_ref::<HelloRefused>()
}

/// Why a connection was lost, in words about the connection.
fn lost(error: Option<&std::io::Error>) -> String {
    match error {
        None => "the daemon closed the connection or went away".to_owned(),
        Some(e) => crate::error::error_chain(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_not_called_a_shutdown() {
        let reason = lost(None);
        assert!(!reason.contains("shutdown"), "{reason}");
        let error = Error::new(ErrorKind::Disconnected {
            uri: "rmi:obj_1@127.0.0.1:4000".into(),
            method: "f".into(),
            reason,
            cause: None,
        });
        assert_eq!(
            error.to_string(),
            "the connection to rmi:obj_1@127.0.0.1:4000 was lost during 'f': the daemon closed the connection or went away; check that its server is still running, then retry (the proxy reconnects on its next call)"
        );
    }
}
