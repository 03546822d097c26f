//! `Jitter`'s text form (`full`, `additive:500ms`, `proportional:0.25`).
//!
//! Invariants: never panics; whatever parses prints (Display) as text that
//! parses back to the same jitter. `FromStr` does not range-check a
//! proportion (the policy builder does), so `proportional:NaN` parses: NaN is
//! compared by bits since `NaN != NaN`.
#![no_main]

use backstop::Jitter;
use libfuzzer_sys::fuzz_target;

fn same(a: Jitter, b: Jitter) -> bool {
    match (a, b) {
        (Jitter::Proportional(x), Jitter::Proportional(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

fuzz_target!(|s: &str| {
    if let Ok(j) = s.parse::<Jitter>() {
        let text = j.to_string();
        let back = text.parse::<Jitter>();
        assert!(matches!(back, Ok(b) if same(b, j)), "{s:?} -> {j:?} -> {text:?} -> {back:?}");
    }
});
