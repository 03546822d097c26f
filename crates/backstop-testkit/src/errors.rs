//! A check of the workspace's rule for printing errors: `{}` is one layer,
//! `source()` gives the cause, `{:#}` prints the whole chain with each cause
//! once, and no form shows a secret.

use std::error::Error;

/// Asserts that `err` follows the rule, and that none of `{}`, `{:#}`,
/// `{:?}` or any layer of its source chain contains `secret`. Returns the
/// `{:#}` form, for further assertions.
pub fn assert_prints_well(err: &(dyn Error + 'static), secret: &str) -> String {
    let mut layers = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        layers.push(e.to_string());
        next = e.source();
    }
    for pair in layers.windows(2) {
        assert!(!pair[0].contains(&pair[1]), "a layer prints its cause, which `{{:#}}` prints again: {pair:#?}");
    }
    let alternate = format!("{err:#}");
    assert_eq!(alternate, layers.join(": "), "`{{:#}}` is every layer, each once");
    for text in [alternate.clone(), format!("{err:?}")].iter().chain(&layers) {
        assert!(!text.contains(secret), "{secret:?} printed: {text}");
    }
    alternate
}
