//! Reads an exposed trait into a [`Service`], refusing what cannot travel over the network.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    FnArg, Ident, Item, ItemTrait, Pat, ReturnType, Signature, TraitItem, TraitItemFn, Type,
    Visibility,
};

/// Names the generated proxy defines itself; a method of the same name would collide.
const RESERVED: &[&str] = &[
    "connect",
    "uri",
    "timeout",
    "with_timeout",
    "clone",
    "core",
    "from_core",
];

/// serde implements `Serialize` for tuples of up to 16 elements; arguments travel as one.
const MAX_ARGS: usize = 16;

pub struct Service {
    pub item: ItemTrait,
    pub vis: Visibility,
    pub name: Ident,
    pub methods: Vec<Method>,
}

pub struct Method {
    /// The method's doc comments, for the proxy's method.
    pub docs: Vec<syn::Attribute>,
    pub name: Ident,
    pub args: Vec<Arg>,
    /// `None` for methods that return `()`.
    pub output: Option<Type>,
    /// How the result travels.
    pub output_wire: Wire,
    /// `#[oneway]`: the caller does not wait for the method to run.
    pub oneway: bool,
}

pub struct Arg {
    pub name: Ident,
    pub ty: Type,
    /// How the argument travels.
    pub wire: Wire,
}

/// How a parameter or result travels, read from its type as written: bytes go as one byte
/// string rather than as serde's sequence of numbers. Each is a marker type of
/// `rmi::__private` that implements `WireForm` for the type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wire {
    /// As serde writes it.
    AsIs,
    /// `Vec<u8>`, `[u8; N]`, `Box<[u8]>`, `ByteBuf`.
    Bytes,
    /// `Result<bytes, E>`.
    BytesInOk,
    /// `Option<bytes>`.
    BytesInSome,
    /// `Stream<bytes>` (`rmi::Stream`).
    BytesInStream,
    /// `Result<Stream<bytes>, E>`.
    BytesStreamInOk,
}

impl Wire {
    /// How a value of type `ty` travels.
    pub fn of(ty: &Type) -> Wire {
        if is_bytes(ty) {
            return Wire::Bytes;
        }
        let Some((name, args)) = last_segment(ty) else {
            return Wire::AsIs;
        };
        match (name.as_str(), args.as_slice()) {
            ("Result", [ok, _]) if is_bytes(ok) => Wire::BytesInOk,
            ("Result", [ok, _]) if Wire::of(ok) == Wire::BytesInStream => Wire::BytesStreamInOk,
            ("Option", [some]) if is_bytes(some) => Wire::BytesInSome,
            ("Stream", [item]) if is_bytes(item) => Wire::BytesInStream,
            _ => Wire::AsIs,
        }
    }

    /// The marker's name in `rmi::__private`, or `None` for a type that travels as it is.
    pub fn marker(self) -> Option<&'static str> {
        match self {
            Wire::AsIs => None,
            Wire::Bytes => Some("Bytes"),
            Wire::BytesInOk => Some("BytesInOk"),
            Wire::BytesInSome => Some("BytesInSome"),
            Wire::BytesInStream => Some("BytesInStream"),
            Wire::BytesStreamInOk => Some("BytesStreamInOk"),
        }
    }
}

/// `Vec<u8>`, `[u8; N]`, `Box<[u8]>` or `ByteBuf` (serde_bytes'), by any path.
fn is_bytes(ty: &Type) -> bool {
    match ty {
        Type::Array(array) => is_u8(&array.elem),
        Type::Paren(inner) => is_bytes(&inner.elem),
        _ => match last_segment(ty) {
            Some((name, args)) => match (name.as_str(), args.as_slice()) {
                ("Vec", [item]) => is_u8(item),
                ("Box", [Type::Slice(slice)]) => is_u8(&slice.elem),
                ("ByteBuf", []) => true,
                _ => false,
            },
            None => false,
        },
    }
}

fn is_u8(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("u8"))
}

/// The last segment of a path type: its name and its type arguments.
fn last_segment(ty: &Type) -> Option<(String, Vec<&Type>)> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let segment = path.path.segments.last()?;
    let args = match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                syn::GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((segment.ident.to_string(), args))
}

/// Collects every problem before reporting, so one build shows them all.
#[derive(Default)]
struct Problems(Option<syn::Error>);

impl Problems {
    fn add(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Like `add`, but underlines all of `tokens`, not only their first token.
    fn add_spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

impl Service {
    pub fn parse(item: Item) -> syn::Result<Service> {
        let item = match item {
            Item::Trait(item) => item,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "#[rmi::expose] goes on a trait: `#[rmi::expose] pub trait Greeter { async fn welcome_message(&self, name: String) -> String; }`",
                ))
            }
        };
        let mut problems = Problems::default();
        check_trait(&item, &mut problems);
        let mut methods = Vec::new();
        for trait_item in &item.items {
            match trait_item {
                TraitItem::Fn(method) => {
                    if let Some(method) = Method::parse(method, &mut problems) {
                        methods.push(method);
                    }
                }
                other => problems.add(
                    other.span(),
                    "an exposed trait holds only `async fn` methods; move constants, types and macros elsewhere",
                ),
            }
        }
        let service = Service {
            vis: item.vis.clone(),
            name: item.ident.clone(),
            item,
            methods,
        };
        problems.finish(service)
    }
}

fn check_trait(item: &ItemTrait, problems: &mut Problems) {
    if !item.generics.params.is_empty() {
        problems.add_spanned(
            &item.generics,
            "an exposed trait cannot be generic: a remote caller has no way to choose the type; use concrete types",
        );
    }
    if let Some(where_clause) = &item.generics.where_clause {
        problems.add_spanned(
            where_clause,
            "an exposed trait cannot have a `where` clause: its bounds on `Self` act as supertraits, which cannot be exposed; remove the clause",
        );
    }
    if !item.supertraits.is_empty() {
        problems.add(
            item.supertraits.span(),
            "an exposed trait cannot have supertraits: their methods would not be reachable remotely; expose each trait on its own",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        problems.add(unsafety.span, "an exposed trait cannot be `unsafe`");
    }
    if let Some(auto) = &item.auto_token {
        problems.add(auto.span, "an exposed trait cannot be an auto trait");
    }
}

impl Method {
    fn parse(method: &TraitItemFn, problems: &mut Problems) -> Option<Method> {
        let before = problems.0.is_some();
        let sig = &method.sig;
        check_signature(sig, problems);
        if let Some(body) = &method.default {
            problems.add(
                body.span(),
                "an exposed method cannot have a default body; write the body in each `impl`",
            );
        }
        let args = parse_args(sig, problems);
        let oneway = method
            .attrs
            .iter()
            .find(|attr| attr.path().is_ident("oneway"));
        if let (Some(_), ReturnType::Type(_, ty)) = (oneway, &sig.output) {
            problems.add(
                ty.span(),
                "a #[oneway] method returns nothing: its caller does not wait for a result; remove the return type, or the #[oneway]",
            );
        }
        let output = match &sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => {
                check_owned(ty, "a result", problems);
                Some((**ty).clone())
            }
        };
        let output_wire = output.as_ref().map_or(Wire::AsIs, Wire::of);
        (problems.0.is_some() == before).then(|| Method {
            docs: method
                .attrs
                .iter()
                .filter(|attr| attr.path().is_ident("doc"))
                .cloned()
                .collect(),
            name: sig.ident.clone(),
            args,
            output,
            output_wire,
            oneway: oneway.is_some(),
        })
    }
}

fn check_signature(sig: &Signature, problems: &mut Problems) {
    let name = sig.ident.to_string();
    if RESERVED.contains(&name.as_str()) {
        problems.add(
            sig.ident.span(),
            format_args!(
                "`{name}` is a method of every generated proxy; rename this method (reserved: {})",
                RESERVED.join(", ")
            ),
        );
    }
    if sig.asyncness.is_none() {
        problems.add(
            sig.fn_token.span,
            "an exposed method must be `async fn`: every remote call is awaited",
        );
    }
    if !sig.generics.params.is_empty() {
        problems.add_spanned(
            &sig.generics,
            "an exposed method cannot be generic: the server must know every argument's type; use concrete types (an enum for several)",
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        problems.add_spanned(
            where_clause,
            "an exposed method cannot have a `where` clause: every object implementing the trait must be callable remotely; remove the clause",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        problems.add(unsafety.span, "an exposed method cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        problems.add(abi.span(), "an exposed method cannot have an `extern` ABI");
    }
    if let Some(variadic) = &sig.variadic {
        problems.add(variadic.span(), "an exposed method cannot be variadic");
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            if receiver.reference.is_none() || receiver.colon_token.is_some() {
                problems.add(
                    receiver.span(),
                    "an exposed method takes `&self`: the object stays on the server and serves many calls, so it cannot be moved out; use `&self`",
                );
            } else if let Some(mutability) = &receiver.mutability {
                problems.add(
                    mutability.span,
                    "an exposed method takes `&self`, not `&mut self`: a daemon calls one object from many clients at once; keep state behind a Mutex or atomics",
                );
            }
        }
        _ => problems.add(
            sig.ident.span(),
            "an exposed method needs a `&self` receiver: `async fn name(&self, ...)`",
        ),
    }
}

fn parse_args(sig: &Signature, problems: &mut Problems) -> Vec<Arg> {
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(arg) => Some(arg),
            FnArg::Receiver(_) => None,
        })
        .collect();
    if let Some(first_extra) = typed.get(MAX_ARGS) {
        problems.add_spanned(
            first_extra,
            format_args!(
                "an exposed method takes at most {MAX_ARGS} arguments (this is argument {}); group them in a struct",
                MAX_ARGS + 1
            ),
        );
    }
    typed
        .into_iter()
        .filter_map(|arg| {
            check_owned(&arg.ty, "an argument", problems);
            match &*arg.pat {
                Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                    Some(Arg {
                        name: ident.ident.clone(),
                        ty: (*arg.ty).clone(),
                        wire: Wire::of(&arg.ty),
                    })
                }
                other => {
                    problems.add(
                        other.span(),
                        "give each argument of an exposed method a plain name, as `name: Type`",
                    );
                    None
                }
            }
        })
        .collect()
}

/// Refuses types that cannot be sent by value: references, lifetimes, `impl Trait`, `dyn`.
fn check_owned(ty: &Type, what: &str, problems: &mut Problems) {
    use syn::visit::Visit;
    struct Finder<'a> {
        what: &'a str,
        problems: &'a mut Problems,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, ty: &'ast syn::TypeReference) {
            self.problems.add(
                ty.span(),
                format_args!(
                    "{} of an exposed method cannot be a reference: it is sent over the network by value; use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`)",
                    self.what
                ),
            );
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" {
                self.problems.add(
                    lifetime.span(),
                    format_args!(
                        "{} of an exposed method cannot borrow: it is sent over the network by value; use an owned type",
                        self.what
                    ),
                );
            }
        }
        fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
            self.problems.add(
                ty.span(),
                format_args!(
                    "{} of an exposed method cannot be `impl Trait`: the other side needs a concrete type to decode; name the type",
                    self.what
                ),
            );
        }
        fn visit_type_trait_object(&mut self, ty: &'ast syn::TypeTraitObject) {
            self.problems.add(
                ty.span(),
                format_args!(
                    "{} of an exposed method cannot be a `dyn Trait`: the other side needs a concrete type to decode; use a concrete type or an enum",
                    self.what
                ),
            );
        }
        fn visit_type_path(&mut self, ty: &'ast syn::TypePath) {
            if ty.qself.is_none() && ty.path.segments.first().is_some_and(|s| s.ident == "Self") {
                self.problems.add(
                    ty.span(),
                    format_args!(
                        "{} of an exposed method cannot name `Self`: the client has no `Self`, only a proxy; name the concrete type",
                        self.what
                    ),
                );
            }
            syn::visit::visit_type_path(self, ty);
        }
        fn visit_type_ptr(&mut self, ty: &'ast syn::TypePtr) {
            self.problems.add(
                ty.span(),
                format_args!(
                    "{} of an exposed method cannot be a raw pointer: it means nothing in another process",
                    self.what
                ),
            );
        }
    }
    Finder { what, problems }.visit_type(ty);
}

#[cfg(test)]
mod tests {
    use super::Wire;

    #[test]
    fn bytes_are_found_where_they_travel_as_byte_strings() {
        let cases: [(syn::Type, Wire); 12] = [
            (syn::parse_quote!(Vec<u8>), Wire::Bytes),
            (syn::parse_quote!(std::vec::Vec<u8>), Wire::Bytes),
            (syn::parse_quote!([u8; 32]), Wire::Bytes),
            (syn::parse_quote!(Box<[u8]>), Wire::Bytes),
            (syn::parse_quote!(serde_bytes::ByteBuf), Wire::Bytes),
            (syn::parse_quote!(Result<ByteBuf, E>), Wire::BytesInOk),
            (syn::parse_quote!(Result<Vec<u8>, String>), Wire::BytesInOk),
            (syn::parse_quote!(Option<Vec<u8>>), Wire::BytesInSome),
            (syn::parse_quote!(rmi::Stream<Vec<u8>>), Wire::BytesInStream),
            (
                syn::parse_quote!(Result<rmi::Stream<Vec<u8>>, E>),
                Wire::BytesStreamInOk,
            ),
            (syn::parse_quote!(Vec<u16>), Wire::AsIs),
            (syn::parse_quote!(Vec<Vec<u8>>), Wire::AsIs),
        ];
        for (ty, wire) in cases {
            assert_eq!(Wire::of(&ty), wire, "{}", quote::quote!(#ty));
        }
    }
}
