//! Scale-out: -shard I/N and auto from array-job environments, -s3-event.

use crate::common::*;
use std::collections::BTreeSet;
use std::process::Output;

const SET: &str = r#"{"n": {"size": "!16,16"}}"#;
const ARRAY_VARS: &[&str] = &[
    "JOB_COMPLETION_INDEX",
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "AWS_BATCH_JOB_ARRAY_SIZE",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
    "CLOUD_RUN_TASK_INDEX",
    "CLOUD_RUN_TASK_COUNT",
];

type Env<'a> = Vec<(&'a str, &'a str)>;

fn collection(n: usize) -> Setup {
    let files: Vec<(String, std::path::PathBuf)> = (0..n)
        .map(|i| (format!("coll/p{i:03}.png"), fixture("rgb.png")))
        .collect();
    let refs: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
    Setup::new(FULL_CONFIG, SET, &refs)
}

/// Runs in the setup with exactly the array-job variables given.
fn run_env(s: &Setup, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = s.command(args);
    for v in ARRAY_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    run_piped(cmd, stdin.unwrap_or(""))
}

fn keys(out: &Output) -> BTreeSet<String> {
    assert_exit(out, 0);
    stdout_json(out)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn shards_cover_every_source_exactly_once() {
    let s = collection(30);
    let all = keys(&run_env(&s, &["-uri", "coll", "-dry-run"], &[], None));
    assert_eq!(all.len(), 30);
    for n in [1u32, 2, 3, 7] {
        let mut union = BTreeSet::new();
        let mut total = 0;
        for i in 0..n {
            let spec = format!("{i}/{n}");
            let out = run_env(
                &s,
                &["-uri", "coll", "-dry-run", "-shard", &spec],
                &[],
                None,
            );
            assert!(stderr(&out).contains(&format!("shard {spec}: ")));
            let part = keys(&out);
            total += part.len();
            union.extend(part);
        }
        assert_eq!(union, all, "{n} shards");
        assert_eq!(total, all.len(), "{n} shards overlap");
    }
}

#[test]
fn auto_reads_each_array_job_environment() {
    let s = collection(12);
    let fixed: Vec<BTreeSet<String>> = (0..3)
        .map(|i| {
            let spec = format!("{i}/3");
            keys(&run_env(
                &s,
                &["-uri", "coll", "-dry-run", "-shard", &spec],
                &[],
                None,
            ))
        })
        .collect();
    for (i, want) in fixed.iter().enumerate() {
        let idx = i.to_string();
        let slurm_id = (i + 1).to_string();
        let platforms: Vec<(Env, Vec<&str>)> = vec![
            (
                vec![("JOB_COMPLETION_INDEX", &idx)],
                vec!["-shard-count", "3"],
            ),
            (
                vec![
                    ("AWS_BATCH_JOB_ARRAY_INDEX", &idx),
                    ("AWS_BATCH_JOB_ARRAY_SIZE", "3"),
                ],
                vec![],
            ),
            (
                vec![
                    ("SLURM_ARRAY_TASK_ID", &slurm_id),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
                vec![],
            ),
            (
                vec![
                    ("CLOUD_RUN_TASK_INDEX", &idx),
                    ("CLOUD_RUN_TASK_COUNT", "3"),
                ],
                vec![],
            ),
        ];
        for (env, extra) in platforms {
            let mut args = vec!["-uri", "coll", "-dry-run", "-shard", "auto"];
            args.extend(extra);
            assert_eq!(&keys(&run_env(&s, &args, &env, None)), want, "{env:?}");
        }
    }
}

#[test]
fn a_shard_writes_only_its_own_sources() {
    let s = collection(8);
    let out = run_env(&s, &["-uri", "coll", "-shard", "1/2"], &[], None);
    let mine = keys(&out);
    // Some but not all, or the loop below would not tell writing only its own from writing all or none.
    assert!(!mine.is_empty() && mine.len() < 8, "{mine:?}");
    for i in 0..8 {
        let key = format!("coll/p{i:03}.png");
        let written = s
            .path("out")
            .join(&key)
            .join("full/!16,16/0/color.jpg")
            .is_file();
        assert_eq!(written, mine.contains(&key), "{key}");
    }
}

#[test]
fn bad_shards_are_usage_errors() {
    let s = collection(2);
    for (args, env, why) in [
        (vec!["-shard", "2/2"], vec![], "expected I/N"),
        (vec!["-shard", "x"], vec![], "expected I/N"),
        (vec!["-shard", "auto"], vec![], "no array-job index"),
        (
            vec!["-shard", "auto"],
            vec![("JOB_COMPLETION_INDEX", "0")],
            "-shard-count",
        ),
        (
            vec!["-shard", "auto", "-shard-count", "2"],
            vec![("JOB_COMPLETION_INDEX", "2")],
            "not below",
        ),
    ] {
        let mut all = vec!["-uri", "coll"];
        all.extend(args);
        let out = run_env(&s, &all, &env, None);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(why), "{all:?}: {}", stderr(&out));
    }
}

fn s3_record(event: &str, key: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z", "eventName": event,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQ"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "masters",
               "bucket": {"name": "museum-masters", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": "arn:aws:s3:::museum-masters"},
               "object": {"key": key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                          "sequencer": "0055AED6DCD90281E5"}}
    })
}

fn event_setup() -> Setup {
    Setup::new(
        FULL_CONFIG,
        SET,
        &[
            ("uploads/IMG 0084 (1).png", fixture("rgb.png")),
            ("uploads/c++.jpg", fixture("gray.jpg")),
            ("uploads/other.jpg", fixture("gray.jpg")),
        ],
    )
}

#[test]
fn s3_event_file_processes_the_created_objects() {
    let s = event_setup();
    let event = serde_json::json!({"Records": [
        s3_record("ObjectCreated:Put", "uploads/IMG+0084+%281%29.png"),
        s3_record("ObjectCreated:CompleteMultipartUpload", "uploads/c%2B%2B.jpg"),
        s3_record("ObjectRemoved:Delete", "uploads/gone.jpg"),
    ]});
    std::fs::write(s.path("event.json"), event.to_string()).unwrap();
    let out = run_env(&s, &["-s3-event", "event.json"], &[], None);
    let got = keys(&out);
    assert_eq!(
        got,
        BTreeSet::from([
            "uploads/IMG 0084 (1).png".to_string(),
            "uploads/c++.jpg".into()
        ])
    );
    assert!(s
        .path("out/uploads/IMG 0084 (1).png/full/!16,16/0/color.jpg")
        .is_file());
    assert!(stderr(&out).contains("ObjectRemoved:Delete museum-masters/uploads/gone.jpg"));
}

#[test]
fn s3_event_from_stdin_in_sqs_and_eventbridge_shapes() {
    let s = event_setup();
    let s3 = serde_json::json!({"Records": [s3_record("ObjectCreated:Put", "uploads/other.jpg")]});
    let sqs = serde_json::json!({"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": s3.to_string(), "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:masters", "awsRegion": "us-east-1"}]});
    let out = run_env(&s, &["-s3-event", "-"], &[], Some(&sqs.to_string()));
    assert_eq!(
        keys(&out),
        BTreeSet::from(["uploads/other.jpg".to_string()])
    );

    let eb = serde_json::json!({"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
        "time": "2026-11-25T12:00:00Z", "region": "us-east-1", "resources": ["arn:aws:s3:::museum-masters"],
        "detail": {"version": "0", "bucket": {"name": "museum-masters"},
                   "object": {"key": "uploads/c%2B%2B.jpg", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"}});
    let out = run_env(&s, &["-s3-event", "-"], &[], Some(&eb.to_string()));
    assert_eq!(keys(&out), BTreeSet::from(["uploads/c++.jpg".to_string()]));
}

#[test]
fn s3_test_events_do_nothing_and_bad_events_are_refused() {
    let s = event_setup();
    let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-25T12:00:00.000Z","Bucket":"museum-masters","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR"}"#;
    let out = run_env(&s, &["-s3-event", "-"], &[], Some(test));
    assert!(keys(&out).is_empty());
    assert!(!s.path("out").exists());

    std::fs::write(s.path("bad.json"), "{\"Records\": [").unwrap();
    let out = run_env(&s, &["-s3-event", "bad.json"], &[], None);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("bad.json"), "{}", stderr(&out));

    // One bad key is that source's error; the other keys of the event are processed.
    let escape = serde_json::json!({"Records": [
        s3_record("ObjectCreated:Put", "..%2F..%2Fetc%2Fpasswd"),
        s3_record("ObjectCreated:Put", "uploads/other.jpg"),
    ]});
    let out = run_env(&s, &["-s3-event", "-"], &[], Some(&escape.to_string()));
    assert_exit(&out, 1);
    let r = stdout_json(&out);
    assert!(r["../../etc/passwd"]["errors"].is_object(), "{r}");
    assert!(r["../../etc/passwd"]["uris"]
        .as_object()
        .unwrap()
        .is_empty());
    assert!(
        !r["uploads/other.jpg"]["uris"]
            .as_object()
            .unwrap()
            .is_empty(),
        "{r}"
    );
}
