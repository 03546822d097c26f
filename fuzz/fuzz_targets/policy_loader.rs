//! The serde policy loader (`RetryPolicy: Deserialize`), from the same
//! arbitrary text read as TOML and as JSON.
//!
//! Invariants: never panics, whatever the numbers; whatever loads is a valid
//! policy (its builder's validation accepts it again), its delay schedule can
//! be drawn without panicking and stays under the backoff's cap, and it
//! round-trips through serialization as the loader's docs promise (TOML
//! cannot hold integers above i64::MAX, so a refusal to serialize to TOML is
//! allowed; an Ok text must load back equal).
#![no_main]

use backstop::RetryPolicy;
use libfuzzer_sys::fuzz_target;

fn check(p: RetryPolicy) {
    assert_eq!(p.to_builder().build().as_ref(), Ok(&p), "a loaded policy fails its own validation");
    let cap = p.backoff().cap();
    let seeded = p.to_builder().seed(p.seed().unwrap_or(7)).build().unwrap();
    for d in seeded.delays().take(12) {
        assert!(d <= cap, "{d:?} above the cap {cap:?}");
    }
    for retry in [1, 2, 31, 64, 1000, u32::MAX] {
        assert!(p.backoff().nominal(retry) <= cap);
    }
    if let Ok(text) = toml::to_string(&p) {
        let back: RetryPolicy = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        assert_eq!(back, p, "TOML round trip: {text}");
    }
    let json = serde_json::to_string(&p).unwrap();
    let back: RetryPolicy = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}\n{e}"));
    assert_eq!(back, p, "JSON round trip: {json}");
}

fuzz_target!(|text: &str| {
    if let Ok(p) = toml::from_str::<RetryPolicy>(text) {
        check(p);
    }
    if let Ok(p) = serde_json::from_str::<RetryPolicy>(text) {
        check(p);
    }
});
