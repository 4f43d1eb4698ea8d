//! XML-RPC over HTTP (`POST /RPC2`, `POST /RPC2/{name}`): a `methodCall` read, the calls it
//! names made (one, or several in a `system.multicall`), the introspection methods answered,
//! and the `methodResponse` or fault written. The codec itself is `xmlrpc`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::http::{body, AppState};
use crate::objects::Outcome;
use crate::xmlrpc;
use crate::{GatewayError, GatewayState};

/// The most items of a stream gathered into one XML-RPC reply (which cannot stream).
const MAX_GATHERED: usize = 100_000;

pub(crate) async fn rpc2(State(shared): AppState, raw: Result<Bytes, BytesRejection>) -> Response {
    xml_rpc(&shared, None, raw).await
}

pub(crate) async fn rpc2_object(
    State(shared): AppState,
    Path(name): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    xml_rpc(&shared, Some(&name), raw).await
}

/// Answers an XML-RPC request: a response, or a fault (HTTP 200, as the spec asks: faults are
/// answers). Only a body over the limit is an HTTP error, as any transport failure is.
async fn xml_rpc(
    shared: &GatewayState,
    scope: Option<&str>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let raw = match body(shared, raw) {
        Ok(raw) => raw,
        Err(error) => return error.into_response(),
    };
    let read = xmlrpc::read_call(&raw);
    drop(raw);
    let answer = match read {
        Ok(call) => match if call.method == MULTICALL {
            multicall(shared, scope, call.params).await
        } else {
            rpc(shared, scope, call).await
        } {
            Ok(value) => xmlrpc::response(&value),
            Err(error) => {
                tracing::debug!(kind = error.kind(), "XML-RPC fault: {error}");
                xmlrpc::fault(error.fault_code(), &error.to_string())
            }
        },
        Err(xmlrpc::ReadError::Xml(reason)) => {
            xmlrpc::fault(crate::fault::PARSE_ERROR, &format!("not XML: {reason}"))
        }
        Err(xmlrpc::ReadError::NotACall(reason)) => xmlrpc::fault(
            crate::fault::INVALID_REQUEST,
            &format!("not an XML-RPC call: {reason}"),
        ),
    };
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], answer).into_response()
}

/// The introspection methods every XML-RPC endpoint has, with their signatures and help.
const SYSTEM: [(&str, &[&str], &str); 4] = [
    (
        "system.listMethods",
        &["array"],
        "The methods this endpoint offers.",
    ),
    (
        "system.methodHelp",
        &["string", "string"],
        "What a method does: its doc comment and its Rust signature.",
    ),
    (
        "system.methodSignature",
        &["array", "string"],
        "A method's XML-RPC types: [[result, parameter, …]].",
    ),
    (
        MULTICALL,
        &["array", "array"],
        "Several calls in one request: [{methodName, params}, …] answers [[result] or a fault struct, …].",
    ),
];

/// The common XML-RPC extension for several calls in one request.
const MULTICALL: &str = "system.multicall";

/// How many calls of one `system.multicall` run at once.
const MULTICALL_AT_ONCE: usize = 8;

/// `system.multicall`: the calls run a few at a time; each answers `[result]` or a fault struct, in
/// order, and one call's fault does not stop the others.
async fn multicall(
    shared: &GatewayState,
    scope: Option<&str>,
    params: Vec<Value>,
) -> Result<Value, GatewayError> {
    let [Value::Array(calls)] = params.as_slice() else {
        return Err(GatewayError::BadArguments(format!(
            "{MULTICALL} takes one array of {{methodName, params}} structs"
        )));
    };
    let most = shared.limits.max_multicall;
    if calls.len() > most {
        return Err(GatewayError::BadArguments(format!(
            "{MULTICALL} holds {} calls; this gateway takes at most {most} in one request (--max-multicall): send them in several",
            calls.len()
        )));
    }
    let mut answers = Vec::with_capacity(calls.len());
    for one in calls {
        answers.push(one_of_multicall(shared, scope, one));
    }
    // A few at a time, in order: one request does not take the gateway's whole capacity.
    let answers = futures::stream::iter(answers).buffered(MULTICALL_AT_ONCE);
    Ok(Value::Array(answers.collect().await))
}

/// One call of a `system.multicall`: `[result]`, or a fault struct.
async fn one_of_multicall(shared: &GatewayState, scope: Option<&str>, one: &Value) -> Value {
    let method = one.get("methodName").and_then(Value::as_str);
    let params = one.get("params").and_then(Value::as_array);
    let answer = match (method, params) {
        (Some(MULTICALL), _) => Err(GatewayError::BadArguments(format!(
            "{MULTICALL} cannot be nested"
        ))),
        (Some(method), Some(params)) => {
            let call = xmlrpc::MethodCall {
                method: method.to_owned(),
                params: params.clone(),
            };
            rpc(shared, scope, call).await
        }
        _ => Err(GatewayError::BadArguments(format!(
            "each call in {MULTICALL} is a struct with a methodName and params"
        ))),
    };
    match answer {
        Ok(value) => json!([value]),
        Err(error) => {
            json!({ "faultCode": error.fault_code(), "faultString": error.to_string() })
        }
    }
}

async fn rpc(
    shared: &GatewayState,
    scope: Option<&str>,
    call: xmlrpc::MethodCall,
) -> Result<Value, GatewayError> {
    let objects = &shared.objects;
    match call.method.as_str() {
        "system.listMethods" => list_methods(shared, scope).await,
        "system.methodSignature" | "system.methodHelp" => {
            let [Value::String(asked)] = call.params.as_slice() else {
                return Err(GatewayError::BadArguments(format!(
                    "{} takes one string, a method's name",
                    call.method
                )));
            };
            let help = call.method == "system.methodHelp";
            if let Some((_, types, text)) = SYSTEM.iter().find(|(name, ..)| name == asked) {
                return Ok(if help { json!(text) } else { json!([types]) });
            }
            let (name, method) = target(scope, asked)?;
            let proxy = objects.object(name).await?;
            let descriptor = proxy.descriptor();
            let (_, found) = descriptor
                .method(method)
                .ok_or_else(|| GatewayError::unknown_method(name, &descriptor, method))?;
            Ok(if help {
                let signature = found.signature();
                json!(if found.doc.is_empty() {
                    signature
                } else {
                    format!("{}\n\n{signature}", found.doc)
                })
            } else {
                let types: Vec<&str> = std::iter::once(&*found.result)
                    .chain(found.params.iter().map(|p| &*p.ty))
                    .map(xmlrpc::type_of)
                    .collect();
                json!([types])
            })
        }
        asked => {
            let (name, method) = target(scope, asked)?;
            match objects.call(name, method, call.params).await? {
                Outcome::Value(value) => Ok(value),
                Outcome::Stream(mut items) => {
                    let mut gathered = Vec::new();
                    while let Some(item) = items.next().await {
                        if gathered.len() == MAX_GATHERED {
                            return Err(GatewayError::StreamTooLong {
                                method: method.into(),
                                limit: MAX_GATHERED,
                            });
                        }
                        gathered.push(item?);
                    }
                    Ok(Value::Array(gathered))
                }
            }
        }
    }
}

/// The object and method an XML-RPC method name means: at `/RPC2/{name}` the method of that
/// object; at `/RPC2`, `object.method` (split at the last dot: names may hold dots, Rust
/// methods cannot).
fn target<'a>(scope: Option<&'a str>, asked: &'a str) -> Result<(&'a str, &'a str), GatewayError> {
    match scope {
        Some(name) => Ok((name, asked)),
        None => asked.rsplit_once('.').ok_or_else(|| {
            GatewayError::NotFound(format!(
                "the method '{asked}': at /RPC2 methods are named OBJECT.METHOD (or call POST /RPC2/OBJECT)"
            ))
        }),
    }
}

async fn list_methods(shared: &GatewayState, scope: Option<&str>) -> Result<Value, GatewayError> {
    let objects = &shared.objects;
    let mut methods: Vec<String> = SYSTEM.iter().map(|(name, ..)| name.to_string()).collect();
    match scope {
        Some(name) => {
            let proxy = objects.object(name).await?;
            methods.extend(
                proxy
                    .descriptor()
                    .methods
                    .iter()
                    .map(|m| m.name.to_string()),
            );
        }
        None => {
            for name in objects.names().await? {
                match objects.object(&name).await {
                    Ok(proxy) => methods.extend(
                        proxy
                            .descriptor()
                            .methods
                            .iter()
                            .map(|m| format!("{name}.{}", m.name)),
                    ),
                    // One unreachable object does not hide the others' methods.
                    Err(error) => tracing::warn!(%name, "not listed: {error}"),
                }
            }
        }
    }
    methods.sort();
    Ok(json!(methods))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_rpc_names_split_at_the_last_dot() {
        assert_eq!(
            target(None, "example.chain.1.process").unwrap(),
            ("example.chain.1", "process")
        );
        assert_eq!(target(Some("math"), "div").unwrap(), ("math", "div"));
        assert_eq!(target(None, "div").unwrap_err().kind(), "not_found");
    }
}
