//! The streams a connection hosts, as the calls that use them see it: a stream result is
//! hosted on the connection of the call being served ([`host_stream`]), a stream argument is
//! received from it ([`receive_upload`]), and pulls, pushes and closes on the streams'
//! handle are started as calls of their own ([`start_stream_call`]).

use std::sync::Arc;

use serde::Serialize;

use crate::pace::Start;
use crate::session::{refuse, ConnectionState, Request};
use crate::stream_host;
use crate::wire::{Batch, Fault, Format, Invoke};

/// Hosts `items` on the connection of the call being served, in that call's format.
pub(crate) fn host_stream<T: Serialize + Send + 'static>(
    items: futures::stream::BoxStream<'static, Result<T, crate::Error>>,
) -> Result<u64, String> {
    crate::serving::with(|serving| {
        let connection = serving.connection.downcast_ref::<ConnectionState>()?;
        Some(
            connection
                .streams
                .open(serving.format, connection.max_payload, items),
        )
    })
    .flatten()
    .ok_or_else(|| {
        "an rmi::Stream is sent as a method's result or a call's argument, nowhere else".to_owned()
    })?
}

/// The receiving end of the stream the client uploads as `id`, an argument of the call being
/// served, with that call's format (its items').
pub(crate) fn receive_upload(
    id: u64,
) -> Result<(tokio::sync::mpsc::Receiver<stream_host::Pushed>, Format), String> {
    crate::serving::with(|serving| {
        let connection = serving.connection.downcast_ref::<ConnectionState>()?;
        Some(connection.streams.receive(id).map(|r| (r, serving.format)))
    })
    .flatten()
    .ok_or_else(|| {
        "an rmi::Stream is received as a method's result or argument, inside a call".to_owned()
    })?
}

/// Answers a call on the streams' reserved handle (`wire::STREAMS_HANDLE`): a pull, a close
/// or a push.
/// A pull counts among the connection's calls in flight; it ends (as the stream's end)
/// when the daemon stops.
pub(crate) fn start_stream_call(connection: &Arc<ConnectionState>, request: Request) {
    let Some(in_flight) = connection.begin_call() else {
        return refuse(connection, request, Fault::Busy);
    };
    let call = in_flight.connection();
    let serve = move |_context, invoke: Invoke| async move {
        let stop = call.stop.clone();
        let batch_bytes = stream_host::BATCH_BYTES.min(call.max_payload);
        tokio::select! {
            answer = call.streams.handle_request(invoke, batch_bytes) => answer,
            () = stop.stopped() => Format::Bincode
                .encode(&Batch { items: Vec::new(), end: true })
                .map_err(|e| Fault::BadResult(e.to_string())),
        }
    };
    // A pull runs the producer, user code that may take its time, and waits for its
    // items: always in a task of its own.
    in_flight.run(request, serve, Start::OwnTask);
}
