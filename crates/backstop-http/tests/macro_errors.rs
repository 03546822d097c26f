//! The compile errors of `#[api_retry]` (`tests/ui/*.stderr`). Regenerate them
//! after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p backstop-http --test macro_errors`, and read the diff.
#![cfg(feature = "macros")]

#[test]
fn compile_errors_say_what_to_change() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
