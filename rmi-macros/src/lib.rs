//! The `#[expose]` attribute of [rmi](https://docs.rs/rmi). Use it through `rmi::expose`.
//!
//! This crate only parses the trait and emits code; everything the emitted code does at run
//! time lives in `rmi` itself.

#![warn(missing_docs)]

mod emit;
mod model;

use proc_macro::TokenStream;

/// Makes a trait callable over the network: generates `<Trait>Proxy` and the server dispatch.
///
/// A method marked `#[oneway]` (and returning nothing) is sent without waiting for it to run;
/// its failures go to the daemon's `on_oneway_failure` hook, its `oneway_failures()` count and
/// its log, never to the caller:
///
/// ```text
/// #[rmi::expose]
/// pub trait Audit {
///     #[oneway]
///     async fn record(&self, line: String);
/// }
/// ```
///
/// See `rmi::expose` for the full documentation, with examples that run.
#[proc_macro_attribute]
pub fn expose(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    if !args.is_empty() {
        return syn::Error::new_spanned(args, "#[rmi::expose] takes no arguments")
            .to_compile_error()
            .into();
    }
    let item = syn::parse_macro_input!(input as syn::Item);
    match model::Service::parse(item) {
        Ok(service) => emit::service(&service).into(),
        Err(error) => error.to_compile_error().into(),
    }
}
