//! How the function's arguments reach every attempt.
//!
//! The body runs once per attempt, as if the function were called again with
//! the same arguments. References are shared by every attempt as they are.
//! Each name an argument taken by value binds is copied for each attempt
//! (`Clone`; for `Copy` types that is the copy the call made anyway), so a
//! body that moves it, or changes it (`mut buf: Vec<u8>`), starts each attempt
//! from what the caller passed; so does a `mut` reference that the body points
//! elsewhere. A by-value argument that is not `Clone` is a compile error at
//! the argument that says what to do, not a borrow-checker error inside the
//! generated code. An argument bound to `_` is not copied. Patterns stay as
//! written (only their `mut` moves to the copies), so the documentation of
//! the function shows the same signature.
//!
//! What cannot work is rejected with its reason: `self` by value (the first
//! attempt would use it up), and `&mut` arguments of an async function (each
//! attempt's future would need the one mutable borrow while the run holds it).

use proc_macro2::TokenStream;
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Attribute, FnArg, Ident, PatIdent, Path, Signature, Type};

/// What the arguments need.
pub(crate) struct Inputs {
    /// Statements at the top of each attempt: the copies of by-value arguments.
    pub(crate) rebinds: Vec<TokenStream>,
    /// The names by-value arguments bind (an async function's attempts own them).
    pub(crate) owned: Vec<Ident>,
    /// Whether the function is a method on `&mut self` (its guards are then
    /// cloned before the run, so that they do not borrow `self` beside the attempt).
    pub(crate) mut_self: bool,
}

/// Moves the `mut` of the arguments' bindings in `sig` to each attempt's
/// copies (the callers' view of the signature does not change) and returns
/// how each attempt gets its arguments.
pub(crate) fn prepare(sig: &mut Signature, krate: &Path) -> syn::Result<Inputs> {
    let is_async = sig.asyncness.is_some();
    let mut inputs = Inputs { rebinds: Vec::new(), owned: Vec::new(), mut_self: false };
    for arg in sig.inputs.iter_mut() {
        match arg {
            FnArg::Receiver(receiver) => {
                let reference = match peel(&receiver.ty) {
                    Type::Reference(r) => Some(r),
                    ty => pinned(ty),
                };
                let Some(reference) = reference else {
                    let ty = &receiver.ty;
                    return Err(syn::Error::new_spanned(
                        &*receiver,
                        format!(
                            "a `#[retry]` method takes `&self` or `&mut self`: every attempt needs `self` \
                             again, and `self: {}` is taken by value (and `self` cannot be rebound for \
                             each attempt); take `&self`",
                            quote::ToTokens::to_token_stream(ty).to_string().replace(" ", "")
                        ),
                    ));
                };
                let mut_ref = reference.mutability.is_some();
                if mut_ref {
                    if is_async {
                        return Err(async_mut_error(&*receiver, "`&mut self`", "take `&self`"));
                    }
                    inputs.mut_self = true;
                }
            }
            FnArg::Typed(typed) => {
                let cfgs: Vec<&Attribute> =
                    typed.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr")).collect();
                let mut bindings = Bindings(Vec::new());
                bindings.visit_pat_mut(&mut typed.pat);
                let ty_span = typed.ty.span();
                match peel(&typed.ty) {
                    Type::Reference(r) => {
                        let mut_ref = r.mutability.is_some();
                        if is_async && mut_ref {
                            return Err(async_mut_error(&*typed, "a `&mut` argument", "take `&T`"));
                        }
                        // Every attempt shares the reference; a `mut` binding
                        // (one the body may point elsewhere) is each attempt's own.
                        for (ident, _) in bindings.0.iter().filter(|(_, mutable)| *mutable) {
                            inputs.rebinds.push(if mut_ref {
                                quote_spanned!(ty_span=> #(#cfgs)* let mut #ident = &mut *#ident;)
                            } else {
                                quote_spanned!(ty_span=> #(#cfgs)* let mut #ident = #ident;)
                            });
                        }
                    }
                    _ => {
                        for (ident, mutable) in &bindings.0 {
                            inputs.owned.push(ident.clone());
                            let mutability = mutable.then(|| quote_spanned!(ident.span()=> mut));
                            inputs.rebinds.push(quote_spanned! {ty_span=>
                                #(#cfgs)* let #mutability #ident = #krate::__private::reuse(&#ident);
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(inputs)
}

/// The names a pattern binds, and whether each was `mut` (its `mut` is taken
/// off: the function's own binding never changes, each attempt's copy may).
struct Bindings(Vec<(Ident, bool)>);

impl VisitMut for Bindings {
    fn visit_pat_ident_mut(&mut self, pat: &mut PatIdent) {
        self.0.push((pat.ident.clone(), pat.mutability.take().is_some()));
        syn::visit_mut::visit_pat_ident_mut(self, pat);
    }
}

/// The reference inside `Pin<&Self>` or `Pin<&mut Self>`.
fn pinned(ty: &Type) -> Option<&syn::TypeReference> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last().filter(|s| s.ident == "Pin")?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.first()? {
        syn::GenericArgument::Type(inner) => match peel(inner) {
            Type::Reference(r) => Some(r),
            _ => None,
        },
        _ => None,
    }
}

/// `ty` without the invisible groups (`$t:ty` from a `macro_rules!`) and parentheses around it.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => peel(&g.elem),
        Type::Paren(p) => peel(&p.elem),
        other => other,
    }
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
