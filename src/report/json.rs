//! The report as JSON (pretty-printed, UTF-8, newline-terminated). Undefined values are `null`.

use super::Report;

/// The report as JSON bytes.
pub fn to_json(report: &Report) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(report).expect("the report holds only serialisable data");
    out.push(b'\n');
    out
}
