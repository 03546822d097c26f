//! The function a `#[retry]` attribute writes.
//!
//! ```text
//! #[retry(max_attempts = 3, breaker = S3)]
//! fn upload(client: &Client, key: &str, data: Bytes) -> Result<String, S3Error> { BODY }
//! ```
//!
//! becomes, with the same signature:
//!
//! ```text
//! fn upload(client: &Client, key: &str, data: Bytes) -> Result<String, S3Error> {
//!     const POLICY: RetryPolicy = PolicyParts::new(presets::DEFAULT).max_attempts(3).build();
//!     let breaker = &(S3);
//!     let run = POLICY.retry(|| -> Result<String, S3Error> { let data = data.clone(); BODY })
//!         .name("upload")
//!         .breaker(breaker);
//!     match run.call() {
//!         Ok(value) => Ok(value),
//!         Err(err) => Err(last_or_stopped(err)),
//!     }
//! }
//! ```
//!
//! An async function gets `|| { copies; async move BODY }` and `.await`. The
//! policy is a constant, so backstop checks its settings while the program
//! compiles, with the texts of its run-time errors.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Ident, ItemFn, Path, ReturnType, Token, Type};

use crate::args::{Arg, Args, Source};
use crate::inputs::{self, Inputs};
use crate::krate::{self, Holder};

/// What an entry point (`retry`, `s3_retry`, `api_retry`) starts from.
pub(crate) struct Entry {
    /// The preset constant used when none is named.
    pub(crate) preset: &'static str,
    /// The crates the attribute may come through, in the order they are
    /// looked for among the package's dependencies (see [`krate`](crate::krate)).
    pub(crate) holders: &'static [Holder],
    /// Where `backstop` is in a crate that `crate = ..` names: `""` (it is
    /// backstop) or `"::backstop"`.
    pub(crate) backstop: &'static str,
    /// The classifier used when neither `when` nor `retry_if` is given: a
    /// trait of that crate, whose `verdict` judges the function's error and
    /// whose `describe` prints it in the log lines.
    pub(crate) failure: Option<&'static str>,
    /// Whether the function sends HTTP requests, so that a POST or a PATCH
    /// in it must be said to be idempotent before it is retried.
    pub(crate) http: bool,
}

/// The attribute's output: the rewritten function, or the errors and the
/// function unchanged (so that its callers do not report errors of their own).
pub(crate) fn expand(attr: TokenStream, item: TokenStream, entry: &Entry) -> TokenStream {
    match rewrite(attr, item.clone(), entry) {
        Ok(tokens) => tokens,
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#err #item)
        }
    }
}

fn rewrite(attr: TokenStream, item: TokenStream, entry: &Entry) -> syn::Result<TokenStream> {
    let args = syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, attr)?;
    let args = Args::new(args, entry.preset)?;
    let mut func: ItemFn = syn::parse2(item.clone()).map_err(|err| match syn::parse2::<syn::TraitItemFn>(item) {
        Ok(f) if f.default.is_none() => syn::Error::new(
            f.sig.span(),
            "`#[retry]` goes on a function with a body (a trait's default method, or its impl)",
        ),
        _ => err,
    })?;
    let (origin, suffix) = match &args.krate {
        Some(path) => (path.clone(), entry.backstop),
        None => match krate::find(entry.holders) {
            Ok(Some(found)) => (syn::parse_str::<Path>(&format!("::{}", found.name))?, found.holder.inner),
            Ok(None) => {
                let holder = entry.holders[0];
                (syn::parse_str::<Path>(&format!("::{}", holder.package.replace('-', "_")))?, holder.inner)
            }
            Err(message) => return Err(syn::Error::new(Span::call_site(), message)),
        },
    };
    let suffix: TokenStream = suffix.parse()?;
    let krate: Path = syn::parse2(quote!(#origin #suffix))?;
    let ret = return_type(&func)?;
    if entry.http && !args.idempotent {
        check_no_unsafe_method(&func.block)?;
    }
    if let Some(constness) = func.sig.constness {
        return Err(syn::Error::new(constness.span(), "a `const fn` cannot be retried: it cannot sleep"));
    }
    if let Some(other) = func.attrs.iter().find(|a| is_retry_attribute(a.path())) {
        return Err(syn::Error::new_spanned(
            other,
            "this function is already retried: a second retry attribute would multiply the attempts",
        ));
    }
    check_constant_settings(&args, &func.sig)?;
    let Inputs { rebinds, owned, mut_self } = inputs::prepare(&mut func.sig, &krate)?;
    let is_async = func.sig.asyncness.is_some();
    if is_async {
        check_owned_not_read_beside(&args, &owned)?;
    }
    if let (Some((key, _)), false) = (&args.hedge, is_async) {
        return Err(syn::Error::new(
            key.span(),
            "`hedge` needs an async function: a hedge sends the call again while the first is still running",
        ));
    }

    let policy = policy(&args.source, &krate);
    let (guard_lets, guard_setters) = guards(&args, &krate, mut_self);
    let name = match &args.name {
        Some(name) => quote!(#name),
        None => {
            let name = func.sig.ident.unraw().to_string();
            quote!(#name)
        }
    };
    let classifier = match (&args.when, &args.retry_if, entry.failure) {
        (Some(when), _, _) => quote!(.when(#when)),
        (None, Some(retry_if), _) => quote!(.retry_if(#retry_if)),
        (None, None, Some(failure)) => {
            let failure: TokenStream = failure.parse()?;
            let (error, f) = (Ident::new("error", Span::mixed_site()), Ident::new("f", Span::mixed_site()));
            quote_spanned!(ret.span()=>
                .when(|#error| #origin::#failure::verdict(#error))
                .describe_error(|#error, #f| #origin::#failure::describe(#error, #f))
            )
        }
        (None, None, None) => quote!(),
    };

    // A breaker, a throttle or a pacer can end a run before any attempt
    // returns an error, and so can a deadline that passes during an async
    // attempt (the attempt is dropped): the function's error type must then
    // be buildable from `Stopped`. Otherwise (a budget included: it refuses
    // retries, never the first attempt) every run ends with an error.
    let stops_without_error = args
        .guards
        .iter()
        .find(|(key, _)| key != "budget")
        .map(|(key, _)| key.span())
        .or(args.deadline.filter(|_| is_async));
    // (The call is spanned at the argument that needs `From<Stopped>`, where the error then points.)
    let end = |is_async: bool| {
        let span = stops_without_error.unwrap_or_else(Span::call_site);
        let run = Ident::new("__backstop_run", Span::mixed_site().located_at(span));
        let run = if is_async { quote_spanned!(span=> #run.await) } else { quote_spanned!(span=> #run.call()) };
        match stops_without_error {
            Some(span) => quote_spanned!(span=> #krate::__private::last_or_stopped(#run)),
            None => quote!(#krate::__private::last_error(#run)),
        }
    };

    let stmts = &func.block.stmts;
    let run_var = Ident::new("__backstop_run", Span::mixed_site());
    let attempt = if is_async {
        // The closure owns the arguments (a by-value one need not be `Sync`
        // for the future to be `Send`); the `let` with the return type makes
        // the body's value coerce to it (`Box<dyn Trait>`, `&str` from `&String`).
        let helper = quote_spanned!(ret.span()=> #krate::__private::future::<#ret, _, _>);
        let out = Ident::new("__backstop_out", Span::mixed_site());
        let block = &func.block;
        let body = quote! {
            async move {
                #[allow(unused_braces, unreachable_code, unused_variables)]
                let #out: #ret = #block;
                #[allow(unreachable_code)]
                return #out;
            }
        };
        match &args.hedge {
            // Each attempt is a hedged call: its requests are made by a
            // closure owning its own copies, again copied for each request.
            Some(_) => {
                let hedge = Ident::new("__backstop_hedge", Span::mixed_site());
                quote! {
                    #helper(move || {
                        #(#rebinds)*
                        #hedge.run(move || {
                            #(#rebinds)*
                            #body
                        })
                    })
                }
            }
            None => quote! {
                #helper(move || {
                    #(#rebinds)*
                    #body
                })
            },
        }
    } else {
        let helper = quote_spanned!(ret.span()=> #krate::__private::blocking::<#ret, _>);
        quote!(#helper(|| { #(#rebinds)* #(#stmts)* }))
    };
    let end_of_run = end(is_async);
    let body = quote! {{
        #(#guard_lets)*
        let #run_var = #krate::RetryPolicy::retry(#policy, #attempt)
            .name(#name)
            #classifier
            #(#guard_setters)*;
        #end_of_run
    }};
    func.block = syn::parse2(body)?;
    Ok(quote!(#func))
}

/// An async function's attempts own its by-value arguments (so that the
/// future is `Send` with a `Send` argument that is not `Sync`): the
/// classifier and the name cannot read them.
fn check_owned_not_read_beside(args: &Args, owned: &[Ident]) -> syn::Result<()> {
    for (key, expr) in [("when", &args.when), ("retry_if", &args.retry_if), ("name", &args.name)] {
        let Some(expr) = expr else { continue };
        if let Some(found) = idents(expr.to_token_stream()).find(|i| owned.contains(i)) {
            return Err(syn::Error::new(
                found.span(),
                format!(
                    "in an async function, `{key}` cannot read `{found}`: an argument taken by value \
                     belongs to the attempts (each gets a copy); take it by reference, or decide \
                     from the error alone"
                ),
            ));
        }
    }
    Ok(())
}

/// `#[api_retry]` retries the whole function: a POST or a PATCH in it would
/// be sent again after a 5xx or a reset, when the server may have acted on
/// it already. Such a function says `idempotent = true` (its requests carry
/// an idempotency key the server honours), or is not retried this way.
fn check_no_unsafe_method(block: &syn::Block) -> syn::Result<()> {
    let tokens: Vec<proc_macro2::TokenTree> = block.to_token_stream().into_iter().collect();
    if let Some(found) = unsafe_method(&tokens) {
        return Err(syn::Error::new(
            found.span(),
            format!(
                "`#[api_retry]` retries the whole function, and this one sends a {}: after a 5xx or \
                 a reset the server may have acted on it, and a retry would send it again (a \
                 duplicate order). If the request carries an idempotency key the server honours, \
                 say `idempotent = true`; otherwise send it with `backstop_http::send`, which sends \
                 a POST once unless it has an `Idempotency-Key`",
                found.to_string().to_uppercase()
            ),
        ));
    }
    Ok(())
}

/// A `.post(`, `.patch(`, `Method::POST` or `Method::PATCH` in `tokens`.
fn unsafe_method(tokens: &[proc_macro2::TokenTree]) -> Option<Ident> {
    use proc_macro2::{Delimiter, TokenTree};
    for (i, tree) in tokens.iter().enumerate() {
        match tree {
            TokenTree::Group(g) => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                if let Some(found) = unsafe_method(&inner) {
                    return Some(found);
                }
            }
            TokenTree::Ident(ident) => {
                let after_dot = i > 0 && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '.');
                let called =
                    matches!(tokens.get(i + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
                if (ident == "post" || ident == "patch") && after_dot && called {
                    return Some(ident.clone());
                }
                let after_path = i > 1 && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == ':');
                if (ident == "POST" || ident == "PATCH") && after_path {
                    return Some(ident.clone());
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `path` names one of the retry attributes (`retry`, `backstop::retry`, `s3_retry`, ...).
fn is_retry_attribute(path: &Path) -> bool {
    path.segments.last().is_some_and(|s| s.ident == "retry" || s.ident == "s3_retry" || s.ident == "api_retry")
}

/// The policy's settings are constants: they cannot name `Self` or the
/// function's generic parameters (rustc's own error would speak of an inner
/// constant item the user never wrote).
fn check_constant_settings(args: &Args, sig: &syn::Signature) -> syn::Result<()> {
    let Source::Preset { knobs, .. } = &args.source else { return Ok(()) };
    let generics: Vec<&Ident> =
        sig.generics.type_params().map(|p| &p.ident).chain(sig.generics.const_params().map(|p| &p.ident)).collect();
    for knob in knobs {
        let tokens = knob.value.to_token_stream();
        if let Some(bad) = idents(tokens).find(|i| i == "Self" || i == "self" || generics.contains(&i)) {
            return Err(syn::Error::new(
                bad.span(),
                format!(
                    "`{}` is read while the program compiles, so it cannot use `{bad}`: write a literal or a \
                     `const` outside the impl, or give a whole policy with `policy = ..`",
                    knob.key
                ),
            ));
        }
    }
    Ok(())
}

/// Every identifier in `tokens`, groups included.
fn idents(tokens: TokenStream) -> impl Iterator<Item = Ident> {
    tokens.into_iter().flat_map(|tree| -> Box<dyn Iterator<Item = Ident>> {
        match tree {
            proc_macro2::TokenTree::Ident(i) => Box::new(std::iter::once(i)),
            proc_macro2::TokenTree::Group(g) => Box::new(idents(g.stream()).collect::<Vec<_>>().into_iter()),
            _ => Box::new(std::iter::empty()),
        }
    })
}

/// The function's return type: a type that must be `Result<T, E>` (an alias
/// is fine; the trait bound of the attempt checks it) and can be named in the body.
fn return_type(func: &ItemFn) -> syn::Result<Type> {
    let ReturnType::Type(_, ty) = &func.sig.output else {
        return Err(syn::Error::new(
            func.sig.paren_token.span.close(),
            "a `#[retry]` function must return `Result<T, E>`: an attempt that returns `Err` is retried",
        ));
    };
    struct FindImpl(Option<Span>);
    impl<'ast> Visit<'ast> for FindImpl {
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            self.0.get_or_insert(t.span());
        }
    }
    if !could_be_result(ty) {
        return Err(syn::Error::new_spanned(
            ty,
            "a `#[retry]` function must return `Result<T, E>`: an attempt that returns `Err` is retried",
        ));
    }
    let mut find = FindImpl(None);
    find.visit_type(ty);
    if let Some(span) = find.0 {
        return Err(syn::Error::new(
            span,
            "a `#[retry]` function cannot return `impl Trait`: each attempt's result is named by \
             the function's return type; name the type, or box it",
        ));
    }
    Ok((**ty).clone())
}

/// Whether `ty` may be a `Result` (or an alias of one); what is surely not
/// one is rejected here, before the type checker's errors pile up.
fn could_be_result(ty: &Type) -> bool {
    const NOT_RESULTS: [&str; 22] = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64", "bool",
        "char", "str", "String", "Vec", "Option", "Box", "Duration",
    ];
    match ty {
        Type::Path(p) => {
            p.qself.is_some() || p.path.segments.last().is_some_and(|s| !NOT_RESULTS.iter().any(|n| s.ident == n))
        }
        Type::Group(g) => could_be_result(&g.elem),
        Type::Paren(p) => could_be_result(&p.elem),
        Type::Macro(_) | Type::Verbatim(_) => true,
        _ => false,
    }
}

/// The run's policy, as a `&RetryPolicy` expression. A preset and its
/// settings are a constant in a block of its own (so that neither its name
/// nor any binding meets the body's); a policy expression of a `&mut self`
/// method is cloned, so that it does not borrow `self` (see [`guards`]).
fn policy(source: &Source, krate: &Path) -> TokenStream {
    match source {
        Source::Expr(_) => Ident::new("__backstop_policy", Span::mixed_site()).into_token_stream(),
        Source::Preset { constant, knobs } => {
            // Each setting is checked on its own, and a broken rule panics
            // in this constant at the setting's value: the compile error is
            // the rule's message pointing there, and nothing more.
            let parts = Ident::new("__backstop_parts", Span::mixed_site());
            let message = Ident::new("__backstop_message", Span::mixed_site());
            let ok = Ident::new("__backstop_ok", Span::mixed_site());
            let checked = |span: Span, call: TokenStream| {
                quote_spanned! {span=>
                    let #parts = match #call {
                        ::core::result::Result::Ok(#ok) => #ok,
                        ::core::result::Result::Err(#message) => ::core::panic!("{}", #message),
                    };
                }
            };
            let settings = knobs.iter().map(|knob| {
                let (key, value) = (&knob.key, &knob.value);
                checked(value.span(), quote!(#parts.#key(#value)))
            });
            // The rules between settings (`base` ≤ `max`) fail at the last knob given.
            let last = knobs.last().map_or_else(Span::call_site, |k| k.value.span());
            let build = quote_spanned! {last=>
                match #parts.build() {
                    ::core::result::Result::Ok(#ok) => #ok,
                    ::core::result::Result::Err(#message) => ::core::panic!("{}", #message),
                }
            };
            quote! {{
                const POLICY: #krate::RetryPolicy = {
                    let #parts = #krate::__private::PolicyParts::new(#krate::presets::#constant);
                    #(#settings)*
                    #build
                };
                &POLICY
            }}
        }
    }
}

/// The `let`s that evaluate the guard expressions once per call, and the
/// setters that hand them to the run. For a `&mut self` method they are
/// clones (a guard's clone shares its state), so that they do not borrow
/// `self` while the attempt does.
fn guards(args: &Args, krate: &Path, mut_self: bool) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut lets = Vec::new();
    let mut setters = Vec::new();
    if let Source::Expr(expr) = &args.source {
        let var = Ident::new("__backstop_policy", Span::mixed_site());
        lets.push(if mut_self {
            quote_spanned!(expr.span()=> let #var: &#krate::RetryPolicy = &#krate::RetryPolicy::clone(&(#expr));)
        } else {
            quote_spanned!(expr.span()=> let #var: &#krate::RetryPolicy = &(#expr);)
        });
    }
    for (key, expr) in &args.guards {
        let var = Ident::new(&format!("__backstop_{key}"), Span::mixed_site());
        let ty = match key.to_string().as_str() {
            "breaker" => quote!(CircuitBreaker),
            "budget" => quote!(RetryBudget),
            "throttle" => quote!(AdaptiveThrottle),
            "pacer" => quote!(Pacer),
            "limit" => quote!(limit::ConcurrencyLimit),
            _ => quote!(Guards),
        };
        lets.push(if mut_self {
            quote_spanned!(expr.span()=> let #var: &#krate::#ty = &#krate::#ty::clone(&(#expr));)
        } else {
            quote_spanned!(expr.span()=> let #var: &#krate::#ty = &(#expr);)
        });
        setters.push(quote!(.#key(#var)));
    }
    if let Some((_, expr)) = &args.hedge {
        let var = Ident::new("__backstop_hedge", Span::mixed_site());
        lets.push(quote_spanned!(expr.span()=> let #var: &#krate::hedge::Hedge = &(#expr);));
    }
    if let Some(clock) = &args.clock {
        let var = Ident::new("__backstop_clock", Span::mixed_site());
        // The last setter: a `Guards` given before keeps its guards, and this clock.
        if mut_self {
            lets.push(quote_spanned! {clock.span()=>
                let #var = {
                    use #krate::__private::AsClock as _;
                    (#clock).as_backstop_guards()
                };
            });
            setters.push(quote!(.guards(&#var)));
        } else {
            lets.push(quote_spanned! {clock.span()=>
                let #var = {
                    use #krate::__private::AsClock as _;
                    (#clock).as_backstop_clock()
                };
            });
            setters.push(quote!(.clock(#var)));
        }
    }
    (lets, setters)
}
