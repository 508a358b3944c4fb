//! Small number parsers shared by the parameters: strict, overflow-safe, never panicking.

use super::IiifError;

/// A non-negative integer of decimal digits only (no sign, no spaces), within u32.
pub(crate) fn uint(param: &'static str, value: &str, part: &str) -> Result<u32, IiifError> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax(
            param,
            value,
            format!("{part:?} is not a whole number"),
        ));
    }
    part.parse::<u32>()
        .map_err(|_| syntax(param, value, format!("{part} is too large")))
}

/// A non-negative decimal number (`12`, `12.5`, `.5`), finite.
pub(crate) fn float(param: &'static str, value: &str, part: &str) -> Result<f64, IiifError> {
    let ok = !part.is_empty()
        && part.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && part.bytes().filter(|&b| b == b'.').count() <= 1
        && part.bytes().any(|b| b.is_ascii_digit());
    let v = if ok { part.parse::<f64>().ok() } else { None };
    match v {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(syntax(param, value, format!("{part:?} is not a number"))),
    }
}

pub(crate) fn syntax(param: &'static str, value: &str, reason: impl Into<String>) -> IiifError {
    IiifError::Syntax {
        param,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Shortest decimal form of a float (`50`, `12.5`), which parses back to the same value.
pub(crate) fn fmt_float(v: f64) -> String {
    format!("{v}")
}
