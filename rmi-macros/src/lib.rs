//! The `#[expose]` attribute of [rmi](https://docs.rs/rmi). Use it through `rmi::expose`.
//!
//! This crate only parses the trait and emits code; everything the emitted code does at run
//! time lives in `rmi` itself.

mod emit;
mod model;

use proc_macro::TokenStream;

/// Makes a trait callable over the network: generates `<Trait>Proxy` and the server dispatch.
///
/// See `rmi::expose` for the full documentation.
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
