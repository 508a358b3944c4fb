//! Metadata in derivatives (`-metadata`, `derivatives.metadata`): rights fields by default and nothing else, read
//! back with exiftool, an EXIF/XMP/IPTC reader independent of this crate's; the byte-copied `o` re-muxed with its
//! compressed image data unchanged.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `o` is the byte copy (rotation -1 keeps the stored pixels and their Orientation tag); the others are made
/// from the pixels, one per output format.
const SET: &str = r#"{
  "o": {"size": "full", "format": "", "rotation": "-1"},
  "j": {"size": "!64,64", "format": "jpg"},
  "p": {"size": "!64,64", "format": "png"},
  "w": {"size": "!64,64", "format": "webp"},
  "t": {"size": "!64,64", "format": "tif"},
  "g": {"size": "!64,64", "format": "gif"}
}"#;

const CONFIG: &str = r#"{
  "images": {"source": {"name": "Disk", "path": "src"}},
  "derivatives": {"cache": {"name": "Disk", "path": "out"}}
}"#;

/// The rights fields of the fixture, as exiftool names them (group:tag), with their values.
const RIGHTS: [(&str, &str); 4] = [
    ("IFD0:Copyright", "© 2024 Example Museum"),
    ("IFD0:Artist", "A. Photographer"),
    (
        "XMP-dc:Rights",
        "© 2024 Example Museum. All rights reserved.",
    ),
    ("IPTC:CopyrightNotice", "© 2024 Example Museum"),
];

/// Fields of the fixture that only `-metadata all` may carry.
const OTHERS: [&str; 8] = [
    "GPS:GPSLatitude",
    "ExifIFD:SerialNumber",
    "IFD0:Make",
    "IFD0:Model",
    "File:Comment",
    "XMP-dc:Creator",
    "IPTC:By-line",
    "ExifIFD:ExifVersion",
];

/// Every tag exiftool reads from `path`, as `group:tag` -> value (numbers as numbers, `-n`).
fn tags(path: &Path) -> serde_json::Map<String, Value> {
    let out = Command::new("exiftool")
        .args(["-j", "-a", "-G1", "-n"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "exiftool cannot be run ({e}): install exiftool (Debian: libimage-exiftool-perl)"
            )
        });
    assert!(
        out.status.success(),
        "exiftool {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].as_object().cloned().unwrap()
}

fn path_of(s: &Setup, report: &Value, label: &str) -> std::path::PathBuf {
    let uri = report["rights.jpg"]["uris"][label]
        .as_str()
        .unwrap_or_else(|| panic!("no {label} in {report}"));
    s.path("out").join(uri)
}

/// Which rights fields each output format holds: IPTC has no standard place in PNG and WebP, and GIF holds none.
fn holds(label: &str, tag: &str) -> bool {
    match label {
        "o" | "j" | "t" => true,
        "p" | "w" => !tag.starts_with("IPTC"),
        _ => false,
    }
}

fn run_with(args: &[&str], config: &str) -> (Setup, Value) {
    let s = Setup::new(config, SET, &[("rights.jpg", fixture("rights.jpg"))]);
    let mut all = vec!["-uri", "rights.jpg"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    (s, r)
}

/// The JPEG's tables and frame (every marker segment before the first scan that is not APPn or a comment) and
/// its image data from the first scan to EOI.
fn jpeg_image_parts(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    assert_eq!(&bytes[..2], b"\xFF\xD8");
    let mut at = 2;
    let mut tables = Vec::new();
    loop {
        assert_eq!(bytes[at], 0xFF);
        let marker = bytes[at + 1];
        if marker == 0xDA {
            let eoi = bytes.windows(2).rposition(|w| w == b"\xFF\xD9").unwrap();
            return (tables, bytes[at..eoi + 2].to_vec());
        }
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        if !(0xE0..=0xEF).contains(&marker) && marker != 0xFE {
            tables.push(bytes[at..at + 2 + len].to_vec());
        }
        at += 2 + len;
    }
}

#[test]
fn derivatives_carry_the_rights_fields_by_default_and_nothing_else() {
    let (s, r) = run_with(&[], CONFIG);
    for label in ["o", "j", "p", "w", "t", "g"] {
        let t = tags(&path_of(&s, &r, label));
        for (tag, value) in RIGHTS {
            if holds(label, tag) {
                assert_eq!(
                    t.get(tag),
                    Some(&Value::from(value)),
                    "{label}: {tag} in {t:?}"
                );
            } else {
                assert!(t.get(tag).is_none(), "{label}: {tag} in {t:?}");
            }
        }
        for tag in OTHERS {
            assert!(t.get(tag).is_none(), "{label}: {tag} in {t:?}");
        }
    }
    // The made derivatives are upright: no Orientation; the copy keeps the stored pixels and so its tag.
    assert!(tags(&path_of(&s, &r, "j"))
        .get("IFD0:Orientation")
        .is_none());
    assert_eq!(tags(&path_of(&s, &r, "o"))["IFD0:Orientation"], 6);
}

#[test]
fn the_copied_original_is_remuxed_with_the_same_compressed_image() {
    let source = std::fs::read(fixture("rights.jpg")).unwrap();
    for mode in ["rights", "none"] {
        let (s, r) = run_with(&["-metadata", mode], CONFIG);
        let o = path_of(&s, &r, "o");
        let copy = std::fs::read(&o).unwrap();
        assert_ne!(
            copy, source,
            "{mode}: the metadata must have been rewritten"
        );
        // Quantisation and Huffman tables, frame header and the entropy-coded data are the source's, byte for byte.
        assert_eq!(jpeg_image_parts(&copy), jpeg_image_parts(&source), "{mode}");
        assert_eq!(
            decode(&o).to_rgb8(),
            decode(fixture("rights.jpg")).to_rgb8(),
            "{mode}"
        );
        assert_eq!(
            r["rights.jpg"]["dimensions"]["o"],
            serde_json::json!([96, 160])
        );
        let t = tags(&o);
        assert_eq!(t["IFD0:Orientation"], 6, "{mode}");
        for tag in OTHERS {
            assert!(t.get(tag).is_none(), "{mode}: {tag} in {t:?}");
        }
    }
}

#[test]
fn metadata_none_leaves_out_the_rights_too() {
    let (s, r) = run_with(&["-metadata", "none"], CONFIG);
    for label in ["o", "j", "p", "w", "t", "g"] {
        let t = tags(&path_of(&s, &r, label));
        for (tag, _) in RIGHTS {
            assert!(t.get(tag).is_none(), "{label}: {tag} in {t:?}");
        }
        for tag in OTHERS {
            assert!(t.get(tag).is_none(), "{label}: {tag} in {t:?}");
        }
    }
}

#[test]
fn metadata_all_copies_the_original_whole_and_the_source_blocks_into_derivatives() {
    let (s, r) = run_with(&["-metadata", "all"], CONFIG);
    let o = std::fs::read(path_of(&s, &r, "o")).unwrap();
    assert_eq!(o, std::fs::read(fixture("rights.jpg")).unwrap());
    let j = tags(&path_of(&s, &r, "j"));
    for tag in [
        "GPS:GPSLatitude",
        "ExifIFD:SerialNumber",
        "XMP-dc:Creator",
        "IPTC:By-line",
    ] {
        assert!(j.get(tag).is_some(), "{tag} in {j:?}");
    }
    for (tag, value) in RIGHTS {
        assert_eq!(j.get(tag), Some(&Value::from(value)), "{tag} in {j:?}");
    }
    // The source's EXIF says Orientation 6; the derivative is upright, so its copy of the block says 1.
    assert_eq!(j["IFD0:Orientation"], 1);
    let upright = decode_oriented(path_of(&s, &r, "j"));
    assert_eq!((upright.width(), upright.height()), (64, 38));
}

#[test]
fn the_config_key_sets_the_mode_and_the_flag_wins() {
    let config = CONFIG.replace(r#""path": "out"}"#, r#""path": "out"}, "metadata": "none""#);
    let (s, r) = run_with(&[], &config);
    let j = tags(&path_of(&s, &r, "j"));
    assert!(j.get("IFD0:Copyright").is_none(), "{j:?}");
    let (s, r) = run_with(&["-metadata", "rights"], &config);
    let j = tags(&path_of(&s, &r, "j"));
    assert!(j.get("IFD0:Copyright").is_some(), "{j:?}");

    let bad = CONFIG.replace(r#""path": "out"}"#, r#""path": "out"}, "metadata": "some""#);
    let s = Setup::new(&bad, SET, &[("rights.jpg", fixture("rights.jpg"))]);
    let out = s.run(&["-uri", "rights.jpg"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("derivatives.metadata"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("\"some\""), "{}", stderr(&out));
}
