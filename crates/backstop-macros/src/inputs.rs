//! How the function's arguments reach every attempt.
//!
//! The body runs once per attempt, as if the function were called again with
//! the same arguments. References are shared by every attempt as they are.
//! An argument taken by value is copied for each attempt (`Clone`; for `Copy`
//! types that is the copy the call made anyway), so a body that moves it, or
//! changes it (`mut buf: Vec<u8>`), starts each attempt from what the caller
//! passed. A by-value argument that is not `Clone` is a compile error at the
//! argument that says what to do, not a borrow-checker error inside the
//! generated code.
//!
//! What cannot work is rejected with its reason: `self` by value (the first
//! attempt would use it up), and `&mut` arguments of an async function (each
//! attempt's future would need the one mutable borrow while the run holds it).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Pat, PatIdent, Path, Signature, Type};

/// What the arguments need.
pub(crate) struct Inputs {
    /// Statements at the top of each attempt: the copies of by-value arguments.
    pub(crate) rebinds: Vec<TokenStream>,
    /// Whether the function is a method on `&mut self` (its guards are then
    /// cloned before the run, so that they do not borrow `self` beside the attempt).
    pub(crate) mut_self: bool,
}

/// Rewrites the by-value arguments' patterns in `sig` (the callers' view of
/// the signature does not change) and returns how each attempt gets them.
pub(crate) fn prepare(sig: &mut Signature, krate: &Path) -> syn::Result<Inputs> {
    let is_async = sig.asyncness.is_some();
    let mut inputs = Inputs { rebinds: Vec::new(), mut_self: false };
    for (n, arg) in sig.inputs.iter_mut().enumerate() {
        match arg {
            FnArg::Receiver(receiver) => {
                let by_ref = receiver.reference.is_some() || matches!(*receiver.ty, Type::Reference(_));
                if !by_ref {
                    return Err(syn::Error::new_spanned(
                        &*receiver,
                        "a `#[retry]` method takes `&self` or `&mut self`: every attempt needs `self` \
                         again, and `self` taken by value is used up by the first",
                    ));
                }
                if receiver.mutability.is_some() || is_mut_ref(&receiver.ty) {
                    if is_async {
                        return Err(async_mut_error(&*receiver, "`&mut self`", "take `&self`"));
                    }
                    inputs.mut_self = true;
                }
            }
            FnArg::Typed(typed) => {
                if let Type::Reference(r) = &*typed.ty {
                    if is_async && r.mutability.is_some() {
                        return Err(async_mut_error(&*typed, "a `&mut` argument", "take `&T`"));
                    }
                    continue;
                }
                let ty_span = typed.ty.span();
                let rebind = match &mut *typed.pat {
                    Pat::Ident(PatIdent { by_ref: None, mutability, ident, subpat: None, .. }) => {
                        // The caller's value is never changed: only each attempt's copy is.
                        let mutability = mutability.take();
                        quote_spanned!(ty_span=> let #mutability #ident = #krate::__private::reuse(&#ident);)
                    }
                    pat => {
                        let name = format_ident!("__backstop_arg{}", n, span = Span::mixed_site());
                        let rebind = quote_spanned!(ty_span=> let #pat = #krate::__private::reuse(&#name););
                        *typed.pat = Pat::Ident(PatIdent {
                            attrs: Vec::new(),
                            by_ref: None,
                            mutability: None,
                            ident: name,
                            subpat: None,
                        });
                        rebind
                    }
                };
                inputs.rebinds.push(rebind);
            }
        }
    }
    Ok(inputs)
}

fn is_mut_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_some())
}

fn async_mut_error(tokens: impl quote::ToTokens, what: &str, instead: &str) -> syn::Error {
    syn::Error::new_spanned(
        tokens,
        format!(
            "an async `#[retry]` function cannot take {what}: each attempt's future would need the \
             one mutable borrow for itself; {instead} and keep what changes behind a `Mutex` or an \
             atomic, or retry a smaller function that does not need it"
        ),
    )
}
