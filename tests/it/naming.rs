//! Output names from go-iiif-uri strings: file://?target, rewrite://, idsecret://.

use crate::common::*;

const SET: &str = r#"{"o": {"rotation": "-1"}, "b": {"size": "!64,64"}, "s": {"region": "square", "size": "32,", "format": "png"}}"#;

fn setup(instructions: &str) -> Setup {
    Setup::new(
        FULL_CONFIG,
        instructions,
        &[
            ("source/a.jpg", fixture("landscape.jpg")),
            ("source/b.jpg", fixture("portrait.jpg")),
        ],
    )
}

fn uris(report: &serde_json::Value, key: &str) -> Vec<(String, String)> {
    report[key]["uris"]
        .as_object()
        .unwrap_or_else(|| panic!("no uris for {key}: {report}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn file_uri_is_a_plain_path_and_target_renames_the_tree() {
    let s = setup(SET);
    let plain = s.run(&["-uri", "source/a.jpg"]);
    assert_exit(&plain, 0);
    let plain_uris = uris(&stdout_json(&plain), "source/a.jpg");

    let given = "file:///source/a.jpg";
    let out = s.run(&["-uri", given]);
    assert_exit(&out, 0);
    assert_eq!(uris(&stdout_json(&out), given), plain_uris);

    let given = "file:///source/a.jpg?target=new/name.jpg";
    let out = s.run(&["-uri", given, "-report"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    let got = uris(&r, given);
    assert_eq!(
        got,
        [
            ("b".into(), "new/name.jpg/full/!64,64/0/color.jpg".into()),
            ("o".into(), "new/name.jpg/full/full/-1/color.jpg".into()),
            ("s".into(), "new/name.jpg/square/32,/0/color.png".into()),
        ]
    );
    for (_, p) in &got {
        assert!(s.path("out").join(p).is_file(), "{p}");
    }
    assert_eq!(s.output("new/name.jpg/square/32,/0/color.png").width(), 32);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("out/new/name.jpg/process.json")).unwrap())
            .unwrap();
    assert_eq!(report[given]["origin"], "source/a.jpg");
}

#[test]
fn rewrite_writes_exactly_the_target() {
    let s = setup(r#"{"b": {"size": "!64,64"}}"#);
    let given = "rewrite:///source/a.jpg?target=/pub/picture.jpg";
    let out = s.run(&["-uri", given, "-report"]);
    assert_exit(&out, 0);
    assert_eq!(
        uris(&stdout_json(&out), given),
        [("b".into(), "pub/picture.jpg".into())]
    );
    let img = s.output("pub/picture.jpg");
    assert_eq!((img.width(), img.height()), (64, 43));
    assert!(s.path("out/pub/picture.jpg.process.json").is_file());
}

#[test]
fn rewrite_with_several_instructions_is_refused_before_any_work() {
    let s = setup(SET);
    let given = "rewrite:///source/a.jpg?target=pub/picture.jpg";
    let out = s.run(&["-uri", given, "-uri", "source/b.jpg"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(given) && err.contains("3 derivatives"),
        "{err}"
    );
    assert!(!s.path("out").exists(), "nothing may be written");
}

#[test]
fn two_rewrites_to_one_target_are_refused() {
    let s = setup(r#"{"b": {"size": "!64,64"}}"#);
    let out = s.run(&[
        "-uri",
        "rewrite:///source/a.jpg?target=pub/x.jpg",
        "-uri",
        "rewrite:///source/b.jpg?target=pub/x.jpg",
    ]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("would both be written at pub/x.jpg"));
    assert!(!s.path("out").exists());
}

#[test]
fn names_that_meet_are_an_error_never_an_overwrite() {
    // Two sources given the same tree: every derivative name of one is a name of the other.
    let s = setup(r#"{"b": {"size": "!64,64"}}"#);
    let a = "file:///source/a.jpg?target=same.jpg";
    let b = "file:///source/b.jpg?target=same.jpg";
    let out = s.run(&["-uri", a, "-uri", b, "-jobs", "1"]);
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    let failed: Vec<&str> = [a, b]
        .into_iter()
        .filter(|k| r[*k]["errors"].as_object().is_some_and(|e| !e.is_empty()))
        .collect();
    assert_eq!(failed.len(), 1, "{r}");
    let winner = if failed[0] == a { b } else { a };
    assert!(r[failed[0]]["errors"]["b"]
        .as_str()
        .unwrap()
        .contains(&format!("{winner:?}")));
    // The file on disk is the winner's: landscape is 64x43, portrait 43x64.
    let img = s.output("same.jpg/full/!64,64/0/color.jpg");
    let want = if winner == a { (64, 43) } else { (43, 64) };
    assert_eq!((img.width(), img.height()), want);
}

#[test]
fn idsecret_names_tree_secret_and_label() {
    let s = setup(SET);
    let given = "idsecret:///source/a.jpg?id=1234&secret=s33kret&secret_o=seekr3t";
    let out = s.run(&["-uri", given, "-report"]);
    assert_exit(&out, 0);
    let r = stdout_json(&out);
    assert_eq!(
        uris(&r, given),
        [
            ("b".into(), "123/4/1234_s33kret_b.jpg".into()),
            ("o".into(), "123/4/1234_seekr3t_o.jpg".into()),
            ("s".into(), "123/4/1234_s33kret_s.png".into()),
        ]
    );
    assert_eq!(r[given]["dimensions"]["b"], serde_json::json!([64, 43]));
    assert_eq!(s.output("123/4/1234_s33kret_s.png").width(), 32);
    assert!(s.path("out/123/4/1234_seekr3t_o.jpg").is_file());
    assert!(s.path("out/123/4/1234_seekr3t_process.json").is_file());

    let given = "idsecret:///source/b.jpg?id=1234567&secret=x&secret_o=y&root=pub";
    let out = s.run(&["-uri", given]);
    assert_exit(&out, 0);
    assert!(s.path("out/pub/1234567_x_b.jpg").is_file());
    let given = "idsecret:///source/b.jpg?id=1234567&secret=x&secret_o=y";
    let out = s.run(&["-uri", given]);
    assert_exit(&out, 0);
    assert!(s.path("out/123/456/7/1234567_x_b.jpg").is_file());
}

#[test]
fn idsecret_without_secrets_is_deterministic_and_reruns_skip() {
    let s = setup(SET);
    let given = "idsecret:///source/a.jpg?id=98765";
    let first = s.run(&["-uri", given, "-report"]);
    assert_exit(&first, 0);
    let names = uris(&stdout_json(&first), given);
    // Pinned, not recomputed with the library's own function: the names must not change between versions, or a
    // rerun by a newer binary would publish the same image a second time under new names. They are the first 16
    // hex digits of sha1("iiif-process:<secret|secret_o>:98765:<sha1 of landscape.jpg>").
    assert_eq!(
        stdout_json(&first)[given]["origin_fingerprint"],
        "47df5a719161527f591908796809a065498cd45a"
    );
    assert_eq!(names[0].1, "987/65/98765_0fe239685d61f568_b.jpg");
    assert_eq!(names[1].1, "987/65/98765_a2eb71de143158af_o.jpg");
    let b = s.path("out").join(&names[0].1);
    let before = std::fs::metadata(&b).unwrap().modified().unwrap();

    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = s.run(&["-uri", given, "-report", "-skip-existing"]);
    assert_exit(&again, 0);
    assert_eq!(uris(&stdout_json(&again), given), names);
    assert_eq!(std::fs::metadata(&b).unwrap().modified().unwrap(), before);

    // Another source under the same id gets other secrets, so nothing is overwritten.
    let other = s.run(&["-uri", "idsecret:///source/b.jpg?id=98765"]);
    assert_exit(&other, 0);
    let other_names = uris(&stdout_json(&other), "idsecret:///source/b.jpg?id=98765");
    assert!(other_names.iter().all(|n| !names.contains(n)));
}

#[test]
fn malformed_uris_stop_the_run_naming_them() {
    let s = setup(SET);
    for bad in [
        "s3://bucket/a.jpg",
        "idsecret:///source/a.jpg?id=abc",
        "idsecret:///source/a.jpg",
        "file:///source/a.jpg?target=../../escape.jpg",
        "rewrite:///source/a.jpg?target=%2e%2e/x.jpg",
    ] {
        let out = s.run(&["-uri", "source/b.jpg", "-uri", bad]);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(&format!("{bad:?}")),
            "{bad}: {}",
            stderr(&out)
        );
    }
    assert!(!s.path("out").exists());
}

#[test]
fn manifests_take_uri_strings() {
    let s = setup(r#"{"b": {"size": "!64,64"}}"#);
    let out = s.run_stdin(
        &["-manifest", "-"],
        "# publish\nidsecret:///source/a.jpg?id=1&secret=s&secret_o=t\n\nrewrite:///source/b.jpg?target=p/b.jpg\n",
    );
    assert_exit(&out, 0);
    assert!(s.path("out/1/1_s_b.jpg").is_file());
    assert!(s.path("out/p/b.jpg").is_file());
    let r = stdout_json(&out);
    assert!(r["idsecret:///source/a.jpg?id=1&secret=s&secret_o=t"].is_object());
}
