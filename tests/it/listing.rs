//! Every file of a directory listing is accounted for in the report (processed, failed, or skipped with a
//! reason), and `-strict` makes skipped files fail the run.

use crate::common::*;

const SET: &str = r#"{"n": {"size": "!64,64"}}"#;

const CONFIG: &str = r#"{
  "images": {"source": {"name": "Disk", "path": "src"}},
  "derivatives": {"cache": {"name": "Disk", "path": "out"}}
}"#;

#[test]
fn a_listing_with_files_nobody_decodes_reports_each_one() {
    let s = Setup::new(
        CONFIG,
        SET,
        &[
            ("box/cat.jpg", fixture("landscape.jpg")),
            ("box/cat.avif", fixture("cat.avif")),
            ("box/notes.txt", root().join("tests/fixtures/README.md")),
            ("box/cut.jpg", hostile("truncated.jpg")),
        ],
    );
    let out = s.run(&["-uri", "box"]);
    // The truncated JPEG is a failed source; the run still made the others.
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "box/cat.avif",
            "box/cat.jpg",
            "box/cut.jpg",
            "box/notes.txt"
        ]
    );
    let avif = r["box/cat.avif"]["skipped"].as_str().unwrap_or_default();
    assert!(
        avif.contains("AVIF is not a supported image format"),
        "{avif}"
    );
    let txt = r["box/notes.txt"]["skipped"].as_str().unwrap_or_default();
    assert!(txt.contains("not a supported image"), "{txt}");
    for skipped in ["box/cat.avif", "box/notes.txt"] {
        assert_eq!(r[skipped]["uris"], serde_json::json!({}), "{skipped}");
        assert!(r[skipped].get("errors").is_none(), "{skipped}");
    }
    let cut = r["box/cut.jpg"]["errors"]["n"].as_str().unwrap_or_default();
    assert!(cut.contains("truncated"), "{cut}");
    assert!(r["box/cut.jpg"].get("skipped").is_none());
    let made = r["box/cat.jpg"]["uris"]["n"].as_str().unwrap();
    assert_eq!(s.output(made).width(), 64);
    assert!(
        stderr(&out).contains("1 of 4 sources done, 1 failed, 2 skipped (not images)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn strict_turns_skipped_files_into_exit_status_1() {
    let s = Setup::new(
        CONFIG,
        SET,
        &[
            ("box/cat.jpg", fixture("landscape.jpg")),
            ("box/cat.avif", fixture("cat.avif")),
        ],
    );
    let out = s.run(&["-uri", "box"]);
    assert_exit(&out, 0);
    let out = s.run(&["-uri", "box", "-strict"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["box/cat.avif"]["skipped"].is_string(), "{r}");
    assert!(r["box/cat.jpg"]["uris"]["n"].is_string(), "{r}");
    // Nothing skipped: -strict changes nothing.
    let s = Setup::new(CONFIG, SET, &[("box/cat.jpg", fixture("landscape.jpg"))]);
    assert_exit(&s.run(&["-uri", "box", "-strict"]), 0);
}
