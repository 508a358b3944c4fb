//! The report, in go-iiif's shape: `{uri: {dimensions: {label: [w,h]}, uris: {label: path}, ...}}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One swatch as go-iiif reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swatch {
    pub name: String,
    pub hex: String,
    pub reference: String,
    /// The nearest colour of each configured palette, in configuration order; omitted when empty, as go-colours
    /// does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closest: Vec<Swatch>,
}

/// What was made from one source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SourceReport {
    pub dimensions: BTreeMap<String, [u32; 2]>,
    pub uris: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub palette: Option<Vec<Swatch>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blurhash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imagehash: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_fingerprint: Option<String>,
    /// Labels whose derivative failed, with the reason; absent when all succeeded.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
    /// What went wrong without failing anything (a source's ICC profile that cannot be applied), one message
    /// each; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The info.json of each IIIF image service made (`-tiles`), relative to the derivatives root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tiles: Vec<String>,
    /// A file found by listing a directory or bucket that is not an image: why it was not processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl SourceReport {
    /// Take the services of an earlier report of the same source (a `-skip-existing` rerun).
    pub fn take_services(&mut self, previous: SourceReport) {
        self.palette = previous.palette;
        self.blurhash = previous.blurhash;
        self.imagehash = previous.imagehash;
    }
}

/// The report of the source named `given` in a report file as a run writes it: the 2019 form (`{uri: report}`)
/// or go-iiif v8's (the report alone, which carries its source's fingerprint).
pub fn stored(bytes: &[u8], given: &str) -> Option<SourceReport> {
    serde_json::from_slice::<BTreeMap<String, SourceReport>>(bytes)
        .ok()
        .and_then(|mut m| m.remove(given))
        .or_else(|| {
            serde_json::from_slice::<SourceReport>(bytes)
                .ok()
                .filter(|r| r.origin_fingerprint.is_some())
        })
}

/// Pretty JSON with keys sorted at every level, as go-iiif (Go's encoding/json over maps) prints it.
pub fn to_pretty_json<T: Serialize>(value: &T) -> String {
    // Through serde_json::Value, whose maps are sorted, so struct fields come out in key order too.
    let v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// The `-report-format jsonl` line of one source: its report with the source's `uri` beside the other keys.
pub fn json_line(uri: &str, report: &SourceReport) -> String {
    let mut v = serde_json::to_value(report).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("uri".into(), uri.into());
        m.entry("errors").or_insert_with(|| serde_json::json!({}));
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_empty_parts_left_out() {
        let mut r = SourceReport::default();
        r.uris.insert("b".into(), "x/b.jpg".into());
        r.dimensions.insert("b".into(), [2, 1]);
        let mut all = BTreeMap::new();
        all.insert("x", r);
        let s = to_pretty_json(&all);
        assert!(s.find("dimensions").unwrap() < s.find("uris").unwrap());
        assert!(!s.contains("errors") && !s.contains("palette"));
    }
}
