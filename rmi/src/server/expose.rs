//! What generated code runs on the server: `#[expose]` implements [`Expose<P>`] for `Arc<T>`,
//! for every `T` that implements the trait whose proxy is `P`; the generated `dispatch` is a `match`
//! on the method index whose arms call [`run_method`] (or [`run_oneway_method`]). All
//! decoding, encoding and panic handling lives here, not in generated code.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::panic_message;
use crate::oneway::OnewayReport;
use crate::proxy::Proxy;
use crate::wire::{Fault, Format, Payload, Reply};

/// A call as the object sees it: the method index and the encoded arguments.
#[derive(Debug)]
pub struct Call {
    pub(crate) method: u32,
    pub(crate) format: Format,
    pub(crate) args: Payload,
    /// The largest result the connection's frames carry.
    pub(crate) max_result: usize,
    /// For a `#[oneway]` method: where its failure goes, as nobody waits for it.
    pub(crate) oneway: Option<OnewayReport>,
}

impl Call {
    /// The index of the method called, in the trait's declaration order.
    pub fn method(&self) -> u32 {
        self.method
    }
}

/// A shared object that serves the trait whose proxy is `P`.
///
/// `#[expose]` implements it for `Arc<T>` for every `T: Trait + Send + Sync + 'static`; you
/// never implement it by hand. `P` lets one type serve several exposed traits: name the one to
/// register with [`Daemon::register::<FooProxy, _>`](crate::Daemon::register) when a type
/// implements more than one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not serve an exposed trait",
    label = "this object's type implements no `#[rmi::expose]` trait, or is not `Send + Sync + 'static`",
    note = "implement a trait marked `#[rmi::expose]` for the object's type, or name the proxy of the one to serve: `register::<GreeterProxy, _>(object)`"
)]
pub trait Expose<P: Proxy>: Send + Sync + 'static {
    /// Runs `call` on this object. The future is a concrete type (nested `Either`s over the
    /// methods' futures), so a call costs no allocation beyond its task.
    fn dispatch(self, call: Call) -> impl Future<Output = Reply> + Send + 'static;
}

/// Decodes the arguments of `call`, runs `method` on them and encodes its result; a panic in
/// `method` becomes a `Panicked` fault for this caller only.
///
/// # Errors
///
/// - [`Fault::BadArguments`] or [`Fault::BadArgument`] (JSON, with the argument's position)
///   if the arguments do not decode.
/// - [`Fault::BadResult`] if the result does not encode, [`Fault::TooLarge`] if it takes
///   more than the connection's frames carry.
/// - [`Fault::Panicked`] if `method`, or decoding or encoding, panics.
pub async fn run_method<A, R, F, Fut>(call: Call, method: F) -> Reply
where
    A: Args + Send + 'static,
    R: Serialize,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let (format, max_result) = (call.format, call.max_result);
    // Decoding and encoding run user code too (`Deserialize` and `Serialize` impls), so they
    // are inside the guard with the method: any panic is this caller's error only.
    let run = async move {
        let args: A = match format {
            Format::Json => A::from_json(&call.args.contiguous())?,
            Format::Bincode | Format::MessagePack | Format::Serpent => format
                .decode(&call.args.contiguous())
                .map_err(|e| Fault::BadArguments(e.to_string()))?,
        };
        let result = method(args).await;
        Ok(format.encode_within(&result, max_result)?)
    };
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(reply) => reply,
        Err(panic) => Err(Fault::Panicked(panic_message(&*panic))),
    }
}

/// Runs a `#[oneway]` method: answers at once, and runs the method in a task of its own, which
/// the caller's leaving does not cancel. No one waits for its failures: the daemon counts
/// them, hands them to its `on_oneway_failure` hook and logs them (see [`crate::OnewayFailure`]).
pub fn run_oneway_method<A, F, Fut>(
    mut call: Call,
    method: F,
) -> impl Future<Output = Reply> + Send + 'static
where
    A: Args + Send + 'static,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let format = call.format;
    let index = call.method;
    let report = call.oneway.take();
    crate::throttle::spawn_and_warn!(async move {
        match (run_method(call, method).await, report) {
            (Ok(_), _) => Ok(()),
            (Err(fault), Some(report)) => {
                report.failed(index, fault);
                Ok(())
            }
            (Err(fault), None) => Err(format!("oneway call of method {index} failed: {fault:?}")),
        }
    });
    std::future::ready(
        format
            .encode(&())
            .map_err(|e| Fault::BadResult(e.to_string())),
    )
}

/// A method's arguments as one tuple. Besides the tuple's own decoding (MessagePack, from
/// typed proxies), a JSON array decodes element by element, so that an argument that does not fit
/// is reported with its position, which the caller turns into the parameter's name.
pub trait Args: DeserializeOwned {
    /// Decodes a JSON array of exactly the tuple's length.
    ///
    /// # Errors
    ///
    /// [`Fault::BadArguments`] if `bytes` are not a JSON array of that length;
    /// [`Fault::BadArgument`], with its index, for the first element that does not fit its
    /// type.
    fn from_json(bytes: &[u8]) -> Result<Self, Fault>;
}

/// The JSON array of arguments of a call, checked to hold `arity` of them.
fn json_array(bytes: &[u8], arity: usize) -> Result<Vec<serde_json::Value>, Fault> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| Fault::BadArguments(format!("the arguments are not a JSON array: {e}")))?;
    if values.len() != arity {
        return Err(Fault::BadArguments(format!(
            "{} arguments given, {arity} expected",
            values.len()
        )));
    }
    Ok(values)
}

fn json_argument<T: DeserializeOwned>(index: u32, value: serde_json::Value) -> Result<T, Fault> {
    serde_json::from_value(value).map_err(|e| Fault::BadArgument {
        index,
        message: e.to_string(),
    })
}

macro_rules! args_for_tuples {
    ($( ($($name:ident : $index:tt),*) ),* $(,)?) => {$(
        impl<$($name: DeserializeOwned),*> Args for ($($name,)*) {
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_json(bytes: &[u8]) -> Result<Self, Fault> {
                let arity = <[u32]>::len(&[$($index),*]);
                let mut values = json_array(bytes, arity)?.into_iter();
                Ok(($(
                    json_argument::<$name>($index, values.next().unwrap_or_default())?,
                )*))
            }
        }
    )*};
}

args_for_tuples! {
    (),
    (A0: 0),
    (A0: 0, A1: 1),
    (A0: 0, A1: 1, A2: 2),
    (A0: 0, A1: 1, A2: 2, A3: 3),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12, A13: 13),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12, A13: 13, A14: 14),
    (A0: 0, A1: 1, A2: 2, A3: 3, A4: 4, A5: 5, A6: 6, A7: 7, A8: 8, A9: 9, A10: 10, A11: 11, A12: 12, A13: 13, A14: 14, A15: 15),
}

/// The reply to a method index the trait does not have.
pub fn unknown_method() -> std::future::Ready<Reply> {
    std::future::ready(Err(Fault::UnknownMethod))
}

/// Compiles only for types that can travel as an argument or a result: generated code calls
/// it for each one, at the type as the user wrote it, so a missing derive is reported there.
pub fn assert_serde<T: Serialize + DeserializeOwned + Send + 'static>() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<A: Serialize>(args: &A) -> Call {
        Call {
            method: 0,
            format: Format::Bincode,
            args: Format::Bincode.encode(args).unwrap(),
            max_result: crate::wire::MAX_PAYLOAD_BYTES,
            oneway: None,
        }
    }

    #[tokio::test]
    async fn runs_the_method_on_decoded_arguments() {
        let reply = run_method(
            call(&(2u64, 3u64)),
            |(a, b): (u64, u64)| async move { a + b },
        )
        .await;
        let sum: u64 = Format::Bincode
            .decode(&reply.unwrap().contiguous())
            .unwrap();
        assert_eq!(sum, 5);
    }

    #[tokio::test]
    async fn bad_arguments_and_panics_are_faults() {
        let reply = run_method(call(&(1u8,)), |(_s, _t): (String, String)| async move {}).await;
        assert!(matches!(reply, Err(Fault::BadArguments(_))));
        let reply = run_method(call(&()), |(): ()| async move {
            if true {
                panic!("boom {}", 7);
            }
        })
        .await;
        assert_eq!(reply, Err(Fault::Panicked("boom 7".into())));
    }
}
