//! Compile-time checks of `#[rmi::expose]`: each misuse in `tests/ui/` must fail with the
//! message in its `.stderr`, pointing at the offending code; `tests/ui-pass/` must compile.
//!
//! After changing a message, regenerate the expectations with
//! `TRYBUILD=overwrite cargo test -p rmi --test ui` and read the diff.

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
