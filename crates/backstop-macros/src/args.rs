//! The attribute's arguments: `#[retry(preset = s3_upload, max_attempts = 3, breaker = S3)]`.
//!
//! Each argument is `name = expression`, at most once. Durations and jitter
//! are strings in the config-file syntax (`"500ms"`, `"additive:1s"`), read
//! and checked while compiling by backstop itself (see `expand::policy`), so
//! this module only sorts the arguments and rejects combinations that make
//! no sense.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Path, Token};

/// Every argument name, in the order the error for an unknown one lists them.
const ALLOWED: &str = "preset, policy, max_attempts, base, max, factor, jitter, deadline, max_retry_after, seed, \
                       name, when, retry_if, breaker, budget, throttle, pacer, limit, guards, clock, hedge, idempotent, crate";

/// The presets `preset = ...` names, and the constants they stand for.
pub(crate) const PRESETS: [(&str, &str); 4] =
    [("default", "DEFAULT"), ("s3_upload", "S3_UPLOAD"), ("s3_download", "S3_DOWNLOAD"), ("api_call", "API_CALL")];

/// One `name = value`.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `Ident::parse_any` also reads `crate`.
        let key = Ident::parse_any(input)?;
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Arg { key, value })
    }
}

/// A setting of the policy, checked by backstop while compiling.
pub(crate) struct Knob {
    /// The method of `__private::PolicyParts` that sets it (the argument's name).
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

/// Where the policy comes from.
pub(crate) enum Source {
    /// A preset by name (the entry point's default when none is named),
    /// adjusted by the knobs.
    Preset { constant: Ident, knobs: Vec<Knob> },
    /// `policy = expr`: any expression giving a `RetryPolicy` (or a reference to one).
    Expr(Expr),
}

/// The sorted arguments.
pub(crate) struct Args {
    pub(crate) krate: Option<Path>,
    pub(crate) source: Source,
    /// Whether `policy` or a `deadline` was given: either can stop an async run mid-attempt.
    pub(crate) deadline: Option<Span>,
    pub(crate) name: Option<Expr>,
    pub(crate) when: Option<Expr>,
    pub(crate) retry_if: Option<Expr>,
    /// `breaker`, `budget`, `throttle`, `pacer`, `limit`, `guards`, in the order given, with the key.
    pub(crate) guards: Vec<(Ident, Expr)>,
    pub(crate) clock: Option<Expr>,
    /// `hedge = expr`: each attempt of an async function is hedged.
    pub(crate) hedge: Option<(Ident, Expr)>,
    /// `idempotent = true`: the function's requests may be sent twice (`api_retry`).
    pub(crate) idempotent: bool,
}

impl Args {
    /// Sorts `args`; `preset` is the entry point's default preset constant.
    pub(crate) fn new(args: Punctuated<Arg, Token![,]>, preset: &str) -> syn::Result<Self> {
        let mut seen: Vec<Ident> = Vec::new();
        let mut out = Args {
            krate: None,
            source: Source::Preset { constant: Ident::new(preset, Span::call_site()), knobs: Vec::new() },
            deadline: None,
            name: None,
            when: None,
            retry_if: None,
            guards: Vec::new(),
            clock: None,
            hedge: None,
            idempotent: false,
        };
        let mut policy: Option<(Ident, Expr)> = None;
        let mut knobs = Vec::new();
        let mut constant = None;
        for Arg { key, value } in args {
            if let Some(first) = seen.iter().find(|k| **k == key) {
                let mut err = syn::Error::new(key.span(), format!("`{key}` is given twice"));
                err.combine(syn::Error::new(first.span(), "first given here"));
                return Err(err);
            }
            seen.push(key.clone());
            match key.to_string().as_str() {
                "crate" => out.krate = Some(path(value, "crate = ::path::to::backstop")?),
                "preset" => constant = Some(preset_constant(&value)?),
                "policy" => policy = Some((key, value)),
                "max_attempts" | "base" | "max" | "factor" | "jitter" | "deadline" | "max_retry_after" | "seed" => {
                    if key == "deadline" {
                        out.deadline = Some(key.span());
                    }
                    check_integer(&key, &value)?;
                    knobs.push(Knob { key, value });
                }
                "idempotent" => match &value {
                    Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => out.idempotent = b.value,
                    other => return Err(syn::Error::new_spanned(other, "`idempotent` is `true` or `false`")),
                },
                "name" => out.name = Some(value),
                "when" => out.when = Some(value),
                "retry_if" => out.retry_if = Some(value),
                "breaker" | "budget" | "throttle" | "pacer" | "limit" | "guards" => out.guards.push((key, value)),
                "clock" => out.clock = Some(value),
                "hedge" => out.hedge = Some((key, value)),
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown argument `{other}`; `#[retry]` takes: {ALLOWED}"),
                    ));
                }
            }
        }
        if let (Some(when), Some(_)) = (&out.when, &out.retry_if) {
            return Err(syn::Error::new_spanned(
                when,
                "give `when` (a verdict for each error) or `retry_if` (true: retry), not both",
            ));
        }
        match policy {
            Some((key, value)) => {
                if let Some(knob) = knobs.first() {
                    return Err(syn::Error::new(
                        knob.key.span(),
                        format!(
                            "`{}` cannot adjust `policy = ..`: set it on the policy itself \
                             (`policy.to_builder().{}(..).build()`), or start from a `preset`",
                            knob.key, knob.key
                        ),
                    ));
                }
                if constant.is_some() {
                    return Err(syn::Error::new(key.span(), "give `preset` or `policy`, not both"));
                }
                out.deadline = Some(key.span());
                out.source = Source::Expr(value);
            }
            None => {
                let constant = constant.unwrap_or_else(|| Ident::new(preset, Span::call_site()));
                out.source = Source::Preset { constant, knobs };
            }
        }
        Ok(out)
    }
}

/// An integer literal given to `max_attempts` (a `u32`) or `seed` (a `u64`)
/// fits (a constant would wrap before the range check could see it).
fn check_integer(key: &Ident, value: &Expr) -> syn::Result<()> {
    let Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(int), .. }) = value else { return Ok(()) };
    let fits = match key.to_string().as_str() {
        "max_attempts" => int.base10_parse::<u32>().is_ok(),
        "seed" => int.base10_parse::<u64>().is_ok(),
        _ => true,
    };
    if fits {
        return Ok(());
    }
    let max = if key == "seed" { u64::MAX.to_string() } else { u32::MAX.to_string() };
    Err(syn::Error::new_spanned(int, format!("`{key}` is at most {max}")))
}

/// The constant of `preset = s3_upload`, or an error listing the presets.
fn preset_constant(value: &Expr) -> syn::Result<Ident> {
    let named = match value {
        Expr::Path(p) => p.path.get_ident(),
        _ => None,
    };
    let names = PRESETS.map(|(name, _)| name).join(", ");
    let Some(named) = named else {
        return Err(syn::Error::new_spanned(value, format!("`preset` takes a preset's name: {names}")));
    };
    match PRESETS.iter().find(|(name, _)| named == name) {
        Some((_, constant)) => Ok(Ident::new(constant, named.span())),
        None => Err(syn::Error::new(named.span(), format!("unknown preset `{named}`; the presets are {names}"))),
    }
}

/// The path of `crate = ::some::path`.
fn path(value: Expr, example: &str) -> syn::Result<Path> {
    match value {
        Expr::Path(p) => Ok(p.path),
        other => Err(syn::Error::new_spanned(other, format!("expected a path: `{example}`"))),
    }
}
