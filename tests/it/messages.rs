//! What a user reads when something is wrong: each message names the file, label or value, says its cause
//! once, never shows credentials, and says what to write instead where it can.

use crate::common::*;

const CONFIG: &str = r#"{"images": {"source": {"name": "Disk", "path": "src"}},
                        "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#;
const ONE: &str = r#"{"n": {"size": "!100,100"}}"#;

fn setup() -> Setup {
    Setup::new(CONFIG, ONE, &[("a.jpg", fixture("landscape.jpg"))])
}

#[test]
fn a_missing_config_says_its_cause_once() {
    let s = setup();
    let out = std::process::Command::new(bin())
        .args(["-config", "missing.json", "-instructions"])
        .arg(s.path("instructions.json"))
        .args(["-uri", "a.jpg"])
        .current_dir(s.path(""))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert_eq!(
        stderr(&out),
        "iiif-process: cannot read config missing.json: No such file or directory (os error 2)\n"
    );
}

#[test]
fn bad_instructions_say_label_value_and_reason_once() {
    let s = Setup::new(CONFIG, r#"{"thumb": {"size": "!abc"}}"#, &[]);
    let out = s.run(&["-uri", "a.jpg"]);
    assert_exit(&out, 2);
    let e = stderr(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert_eq!(e.matches("invalid size \"!abc\"").count(), 1, "{e}");
    assert!(
        e.contains("instructions.json: \"thumb\": invalid size"),
        "{e}"
    );

    let s = Setup::new(CONFIG, r#"{"t": {"size": "full"}}"#, &[]);
    let out = s.run(&["-uri", "a.jpg", "-api", "3"]);
    assert_exit(&out, 2);
    let e = stderr(&out);
    assert_eq!(e.matches("has no size `full`").count(), 1, "{e}");
}

#[test]
fn a_single_dash_typo_names_the_whole_flag() {
    let s = setup();
    let out = s.run(&["-uri", "a.jpg", "-skip-exsting"]);
    assert_exit(&out, 2);
    assert_eq!(
        stderr(&out).lines().next().unwrap_or_default(),
        "error: unknown flag -skip-exsting (did you mean -skip-existing?)"
    );
}

#[test]
fn the_unused_keys_warning_names_exactly_the_keys_without_effect() {
    let config = r#"{"images": {"source": {"name": "Disk", "path": "src"}},
        "derivatives": {"cache": {"name": "Disk", "path": "out"}},
        "level": {"compliance": "2"},
        "palette_service": {"extruders": [{"uri": "vibrant://", "count": 5}]},
        "blurhash_service": {"x": 4, "y": 3, "size": 32},
        "profile": {"services": {"enable": ["blurhash"]}}}"#;
    let s = Setup::new(config, ONE, &[("a.jpg", fixture("landscape.jpg"))]);
    let out = s.run(&["-uri", "a.jpg"]);
    assert_exit(&out, 0);
    assert_eq!(
        stderr(&out),
        "iiif-process: warning: config keys not used by iiif-process: level\n"
    );
}

#[test]
fn a_storage_uri_is_shown_without_its_query_or_credentials() {
    let config = r#"{"images": {"source": {"uri": "s3://my bucket/x?credentials=SECRET"}},
                     "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#;
    let s = Setup::new(config, ONE, &[]);
    let out = s.run(&["-uri", "a.jpg"]);
    assert_exit(&out, 2);
    let e = stderr(&out);
    assert!(!e.contains("SECRET") && !e.contains("credentials"), "{e}");
    assert!(e.contains("\"s3://my bucket/x\""), "{e}");
}

#[test]
fn a_uri_that_is_not_relative_to_the_source_root_says_what_to_write() {
    let s = setup();
    // The source root itself.
    let root = s.path("src").canonicalize().unwrap();
    let out = s.run(&["-uri", root.to_str().unwrap()]);
    assert_exit(&out, 2);
    let e = stderr(&out);
    assert!(
        e.contains("is the source root itself") && e.contains("relative to it"),
        "{e}"
    );
    // A path relative to the current directory (the setup's), where the source root is src/.
    let out = s.run(&["-uri", "src/a.jpg"]);
    assert_exit(&out, 2);
    let e = stderr(&out);
    assert!(
        e.contains("-uri is relative to images.source") && e.contains("give \"a.jpg\""),
        "{e}"
    );
}

#[test]
fn a_failed_source_is_one_line_and_every_label_is_reported() {
    let s = Setup::new(
        CONFIG,
        r#"{"a": {"size": "!10,10"}, "b": {"size": "!20,20"}, "c": {"size": "!30,30"}}"#,
        &[],
    );
    let out = s.run(&["-uri", "missing.jpg"]);
    assert_exit(&out, 1);
    let e = stderr(&out);
    assert_eq!(
        e.lines().filter(|l| l.contains("missing.jpg")).count(),
        1,
        "{e}"
    );
    let r = stdout_json(&out);
    let labels: Vec<&String> = r["missing.jpg"]["errors"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(labels, ["a", "b", "c"]);
}

#[test]
fn a_plain_http_s3_endpoint_without_aws_allow_http_says_so() {
    // The endpoint is never contacted: the store refuses it when it is opened, instead of failing each request
    // with "builder error".
    for (config, endpoint) in [
        (
            r#"{"images": {"source": {"uri": "s3://masters/p?endpoint=http://127.0.0.1:9&region=us-east-1"}},
                "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#,
            None,
        ),
        (
            r#"{"images": {"source": {"uri": "s3://masters/p?region=us-east-1"}},
                "derivatives": {"cache": {"name": "Disk", "path": "out"}}}"#,
            Some("http://127.0.0.1:9"),
        ),
    ] {
        let s = Setup::new(config, ONE, &[]);
        let mut cmd = s.command(&["-uri", "a.jpg"]);
        cmd.env_remove("AWS_ALLOW_HTTP")
            .env_remove("AWS_ENDPOINT")
            .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "example-secret");
        match endpoint {
            Some(e) => cmd.env("AWS_ENDPOINT_URL", e),
            None => cmd.env_remove("AWS_ENDPOINT_URL"),
        };
        let out = cmd.output().unwrap();
        assert_exit(&out, 2);
        assert_eq!(
            stderr(&out),
            "iiif-process: cannot open s3://masters/p: the endpoint http://127.0.0.1:9 is plain http; \
             set AWS_ALLOW_HTTP=true to allow unencrypted requests, or use https\n"
        );
        // Allowed, the same endpoint is tried (and, with nothing listening there, fails otherwise).
        cmd.env("AWS_ALLOW_HTTP", "true");
        let out = cmd.args(["-storage-retry-time", "0"]).output().unwrap();
        assert!(!stderr(&out).contains("plain http"), "{}", stderr(&out));
    }
}
