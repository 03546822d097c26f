//! The compile errors of `#[backstop::retry]`, with their expected messages
//! (`tests/ui/*.stderr`). Regenerate them after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p backstop --test macro_errors`, and read the diff.
#![cfg(feature = "macros")]

#[test]
fn compile_errors_say_what_to_change() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
