//! What keygate's fuzz targets share. Each target is one file in
//! `fuzz_targets/`: its `check(data)` feeds the input to one parser and
//! asserts what must hold for every input (a round trip, two entry points
//! that agree, a signature that must or must not verify), not only that
//! nothing panics. A failed assertion is a finding: libFuzzer saves the
//! input as a crash.

/// The fuzz input as text, or `None` (most parsers take `&str`; invalid
/// UTF-8 is the HTTP layer's business, not theirs).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Splits the input at the first `sep`: two independent fields from one input.
pub fn split2(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
