//! A Pyro5 client's call as values (`pyro_values`): the serializers served, a call's parts,
//! and its arguments put in the method's order.

use rmi_serpent::Value;

use super::exceptions::{exception, SERIALIZE_ERROR};
use crate::describe::MethodDescriptor;
use crate::pyro_values::decode;
use crate::pyro_wire::Serializer;

/// The serializer of `id`, if the daemon serves it.
pub(super) fn served_serializer(id: u8) -> Result<Serializer, String> {
    match Serializer::of(id) {
        Some(Serializer::Marshal) => Err(
            "the rmi daemon does not read marshal: use serpent (Pyro5's default), json or msgpack"
                .into(),
        ),
        Some(serializer) => Ok(serializer),
        None => Err(format!(
            "unknown serializer id {id}: use serpent (Pyro5's default), json or msgpack"
        )),
    }
}

/// What a Pyro5 `INVOKE` asks for.
pub(super) struct PyroCall {
    pub(super) object: String,
    pub(super) method: String,
    pub(super) args: Vec<Value>,
    pub(super) kwargs: Vec<(Value, Value)>,
}

/// A call's object id, method name, positional and keyword arguments, from its payload:
/// a tuple in serpent and msgpack, a dict in json (Pyro5's `dumpsCall`).
pub(super) fn decode_call(serializer: Serializer, data: &[u8]) -> Result<PyroCall, Value> {
    let bad = |why: String| exception(SERIALIZE_ERROR, format!("not a Pyro5 call: {why}"), None);
    let call = decode(serializer, data).map_err(|e| bad(e.to_string()))?;
    let parts = match (serializer, call) {
        (Serializer::Json, call) => ["object", "method", "params", "kwargs"]
            .map(|key| call.get(key).cloned().unwrap_or(Value::None)),
        (_, Value::List(parts) | Value::Tuple(parts)) if parts.len() == 4 => {
            parts.try_into().expect("4 parts")
        }
        (_, other) => {
            return Err(bad(format!(
                "{other:?} is not (object, method, args, kwargs)"
            )))
        }
    };
    let [object, method, args, kwargs] = parts;
    let (Value::Str(object), Value::Str(method)) = (object, method) else {
        return Err(bad("the object id and method name must be strings".into()));
    };
    let args = match args {
        Value::List(args) | Value::Tuple(args) => args,
        other => return Err(bad(format!("the arguments are {other:?}, not a sequence"))),
    };
    let kwargs = match kwargs {
        Value::Dict(kwargs) => kwargs,
        Value::None => Vec::new(),
        other => {
            return Err(bad(format!(
                "the keyword arguments are {other:?}, not a dict"
            )))
        }
    };
    Ok(PyroCall {
        object,
        method,
        args,
        kwargs,
    })
}

/// The arguments in the method's order: the positional ones, then the keyword ones by
/// parameter name, `None` for an `Option` left out; a `TypeError` as Python raises one for
/// a call that does not fit.
pub(super) fn positional(
    method: &MethodDescriptor,
    mut args: Vec<Value>,
    kwargs: Vec<(Value, Value)>,
) -> Result<Vec<Value>, Value> {
    let type_error = |why: String| {
        exception(
            "builtins.TypeError",
            format!("{}() {why}", method.name),
            None,
        )
    };
    let params = &method.params;
    if args.len() > params.len() {
        return Err(type_error(format!(
            "takes {} positional arguments but {} were given",
            params.len(),
            args.len()
        )));
    }
    let mut kwargs: Vec<(String, Value)> = kwargs
        .into_iter()
        .map(|(k, v)| match k {
            Value::Str(k) => Ok((k, v)),
            k => Err(type_error(format!("keywords must be strings, not {k:?}"))),
        })
        .collect::<Result<_, _>>()?;
    for param in &params[args.len()..] {
        match kwargs.iter().position(|(k, _)| *k == param.name) {
            Some(at) => args.push(kwargs.swap_remove(at).1),
            // An `Option` left out is `None`, as a Python default of `None` would be.
            None if param.ty.trim_start().starts_with("Option<") => args.push(Value::None),
            None => {
                return Err(type_error(format!(
                    "missing required argument: '{}'",
                    param.name
                )))
            }
        }
    }
    if let Some((unknown, _)) = kwargs.first() {
        return Err(type_error(format!(
            "got an unexpected keyword argument '{unknown}'"
        )));
    }
    Ok(args)
}

/// The id of the stream `value` is: an integer, or in JSON `{"rmi.stream": id}`; in a call
/// for an item, the id as the client got it, in text.
pub(super) fn stream_id(value: &Value) -> Option<u64> {
    match value {
        Value::Int(id) => u64::try_from(*id).ok(),
        Value::Str(id) => id.parse().ok(),
        Value::Dict(entries) => match &entries[..] {
            [(key, id)] if key.as_str() == Some(crate::wire::JSON_STREAM_MARKER) => stream_id(id),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_arguments_fill_parameters_by_name() {
        let method: MethodDescriptor = MethodDescriptor {
            name: "add".into(),
            params: vec![
                crate::Param {
                    name: "a".into(),
                    ty: "i64".into(),
                },
                crate::Param {
                    name: "b".into(),
                    ty: "i64".into(),
                },
            ]
            .into(),
            result: "i64".into(),
            oneway: false,
            doc: "".into(),
        };
        let args = positional(
            &method,
            vec![Value::Int(1)],
            vec![("b".into(), Value::Int(2))],
        );
        assert_eq!(args.unwrap(), vec![Value::Int(1), Value::Int(2)]);
        let missing = positional(&method, vec![Value::Int(1)], vec![]).unwrap_err();
        assert!(format!("{missing:?}").contains("missing required argument: 'b'"));
        let unknown = positional(
            &method,
            vec![],
            vec![
                ("a".into(), Value::Int(1)),
                ("b".into(), Value::Int(2)),
                ("c".into(), Value::Int(3)),
            ],
        )
        .unwrap_err();
        assert!(format!("{unknown:?}").contains("unexpected keyword argument 'c'"));
    }
}
