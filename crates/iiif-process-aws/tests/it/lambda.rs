//! The Lambda function end to end: the built binary, started as Lambda starts a custom runtime (an executable
//! named `bootstrap`, no arguments), pulls its invocations from a loopback server that speaks the documented
//! Lambda Runtime API, and reads and writes a moto S3 server; the events are the notifications moto's S3 sends to
//! its SQS queue on each upload, as S3 itself would.
//!
//! Needs `moto_server` on PATH (`.ci/run` installs it), so it is ignored unless run with `--include-ignored`.

use crate::{fixture, moto};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";
const QUEUE: &str = "uploads";

const CONFIG: &str = r#"{
  "profile": {"services": {"enable": ["blurhash"]}},
  "images": {"source": {"uri": "s3://masters/scans?region=us-east-1"}},
  "derivatives": {"cache": {"uri": "s3blob://derivs?prefix=iiif&region=us-east-1&credentials=env:"}}
}"#;

const INSTRUCTIONS: &str = r#"{
  "b": {"size": "!256,256"},
  "sq": {"region": "square", "size": "64,", "format": "png"}
}"#;

/// What the function answered to one invocation: its response, or its error.
type Answer = Result<Value, Value>;

/// A loopback Lambda Runtime API: `GET /2018-06-01/runtime/invocation/next` hands out the queued events (waiting
/// for one, as Lambda does), `POST …/invocation/{id}/response` and `…/{id}/error` are the function's answers.
struct RuntimeApi {
    address: String,
    events: Sender<(String, Value)>,
    answers: Receiver<(String, Answer)>,
    init_errors: Arc<Mutex<Vec<String>>>,
    next_id: u32,
}

impl RuntimeApi {
    fn start() -> RuntimeApi {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("cannot listen on loopback"));
        let address = server
            .server_addr()
            .to_ip()
            .expect("an IP address")
            .to_string();
        let (events, queued) = channel::<(String, Value)>();
        let (answered, answers) = channel();
        let queued = Arc::new(Mutex::new(queued));
        let init_errors = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::clone(&init_errors);
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let (queued, answered, errors) =
                    (Arc::clone(&queued), answered.clone(), Arc::clone(&errors));
                // Each request on its own thread: `next` waits for an event while answers still come in.
                std::thread::spawn(move || {
                    let url = request.url().to_string();
                    let mut body = String::new();
                    let _ = request.as_reader().read_to_string(&mut body);
                    let reply = |request: tiny_http::Request,
                                 status: u16,
                                 headers: Vec<(&str, String)>,
                                 body: String| {
                        let mut response =
                            tiny_http::Response::from_string(body).with_status_code(status);
                        for (n, v) in headers {
                            response.add_header(tiny_http::Header::from_bytes(n, v).unwrap());
                        }
                        let _ = request.respond(response);
                    };
                    let path = url.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
                    if path == "invocation/next" && *request.method() == tiny_http::Method::Get {
                        let next = queued.lock().unwrap().recv();
                        let Ok((id, event)) = next else { return };
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 300_000;
                        let headers = vec![
                            ("Content-Type", "application/json".to_string()),
                            ("Lambda-Runtime-Aws-Request-Id", id),
                            ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                            (
                                "Lambda-Runtime-Invoked-Function-Arn",
                                format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:iiif-process"),
                            ),
                            (
                                "Lambda-Runtime-Trace-Id",
                                "Root=1-5759e988-bd862e3fe1be46a994272793".into(),
                            ),
                        ];
                        reply(request, 200, headers, event.to_string());
                    } else if let Some(rest) = path.strip_prefix("invocation/") {
                        let parsed = serde_json::from_str(&body).unwrap_or(Value::String(body));
                        let answer = match rest.split_once('/') {
                            Some((id, "response")) => Some((id.to_string(), Ok(parsed))),
                            Some((id, "error")) => Some((id.to_string(), Err(parsed))),
                            _ => None,
                        };
                        match answer {
                            Some(a) => {
                                let _ = answered.send(a);
                                reply(request, 202, vec![], r#"{"status":"OK"}"#.into());
                            }
                            None => reply(request, 404, vec![], String::new()),
                        }
                    } else if path == "init/error" {
                        errors.lock().unwrap().push(body);
                        reply(request, 202, vec![], r#"{"status":"OK"}"#.into());
                    } else {
                        reply(request, 404, vec![], String::new());
                    }
                });
            }
        });
        RuntimeApi {
            address,
            events,
            answers,
            init_errors,
            next_id: 0,
        }
    }

    /// Invoke the function with `event` and wait for its answer.
    fn invoke(&mut self, function: &mut Child, event: Value) -> Answer {
        self.next_id += 1;
        let id = format!("8476a536-e9f4-11e8-9739-{:012}", self.next_id);
        self.events.send((id.clone(), event)).unwrap();
        let start = Instant::now();
        loop {
            if let Ok((answered, answer)) = self.answers.recv_timeout(Duration::from_millis(200)) {
                assert_eq!(answered, id, "an answer to another invocation");
                return answer;
            }
            if let Ok(Some(status)) = function.try_wait() {
                panic!(
                    "the function exited ({status}) instead of answering invocation {id}; init errors: {:?}",
                    self.init_errors.lock().unwrap()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "no answer to invocation {id}"
            );
        }
    }
}

/// moto's SQS, through its JSON protocol (what the AWS SDKs speak).
fn sqs(moto: &moto::Moto, action: &str, body: Value) -> Value {
    let headers = [
        ("Content-Type", "application/x-amz-json-1.0".to_string()),
        ("X-Amz-Target", format!("AmazonSQS.{action}")),
    ];
    let (status, answer) = moto.call("POST", "/", "sqs", &headers, body.to_string().as_bytes());
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "SQS {action}: {answer}");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("SQS {action}: {e}: {answer}"))
}

/// The notifications S3 sent to the queue, by the key they name, with the SQS message each came in.
fn received(moto: &moto::Moto, queue_url: &str, count: usize) -> HashMap<String, Value> {
    let mut by_key = HashMap::new();
    let start = Instant::now();
    while by_key.len() < count && start.elapsed() < Duration::from_secs(30) {
        let got = sqs(
            moto,
            "ReceiveMessage",
            json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
        );
        for m in got["Messages"].as_array().into_iter().flatten() {
            let body: Value = serde_json::from_str(m["Body"].as_str().unwrap()).unwrap();
            if let Some(key) = body["Records"][0]["s3"]["object"]["key"].as_str() {
                // S3 form-encodes keys in notifications.
                let key = percent_encoding::percent_decode_str(&key.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned();
                by_key.insert(key, m.clone());
            }
        }
    }
    assert_eq!(
        by_key.len(),
        count,
        "S3 notifications in the queue: {by_key:?}"
    );
    by_key
}

/// An SQS message as Lambda's SQS event source delivers it.
fn lambda_record(message: &Value) -> Value {
    json!({
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764072000000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764072000001"},
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}"),
        "awsRegion": "us-east-1"
    })
}

/// Mean absolute difference per channel between a derivative and the master resized to its size.
fn mean_difference(derivative: &[u8], master: &Path) -> f64 {
    let got = image::load_from_memory(derivative).unwrap().to_rgb8();
    let want = image::open(master).unwrap().to_rgb8();
    let want = image::imageops::resize(
        &want,
        got.width(),
        got.height(),
        image::imageops::FilterType::Lanczos3,
    );
    let total: u64 = got
        .as_raw()
        .iter()
        .zip(want.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    total as f64 / got.as_raw().len() as f64
}

/// The function as Lambda starts it: `bootstrap`, the Runtime API's address and the function's variables in its
/// environment, with moto's AWS settings and `settings`.
fn start_function(
    moto: &moto::Moto,
    api: &RuntimeApi,
    bootstrap: &Path,
    settings: &[(&str, String)],
) -> Child {
    let mut cmd = Command::new(bootstrap);
    moto.env(&mut cmd)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "iiif-process")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/iiif-process")
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/12/02/[$LATEST]0123456789abcdef",
        )
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .current_dir(bootstrap.parent().unwrap())
        .stdin(Stdio::null());
    cmd.spawn().unwrap()
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn with_dispatch_each_upload_starts_an_ecs_task_that_makes_its_derivatives() {
    let moto = moto::start();
    for bucket in ["masters", "derivs", "settings"] {
        moto.create_bucket(bucket);
    }
    // The task reads the same settings as the function: from a bucket. The endpoint is in each URI, since the
    // task's work is done in this process (moto runs no containers), which has no AWS_ENDPOINT_URL.
    let e = &moto.endpoint;
    let config = format!(
        r#"{{"profile": {{"services": {{"enable": ["blurhash"]}}}},
            "images": {{"source": {{"uri": "s3://masters/scans?region=us-east-1&endpoint={e}"}}}},
            "derivatives": {{"cache": {{"uri": "s3://derivs/iiif?region=us-east-1&endpoint={e}"}}}}}}"#
    );
    moto.put("settings", "iiif/config.json", config.into_bytes());
    moto.put(
        "settings",
        "iiif/instructions.json",
        INSTRUCTIONS.as_bytes().to_vec(),
    );
    let jpeg = std::fs::read(fixture("landscape.jpg")).unwrap();
    moto.put("masters", "scans/photos/big.jpg", jpeg);
    let rt = crate::task::runtime();
    let (ecs, ecs_endpoint) = crate::task::ecs_setup(&moto, &rt);
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::fs::copy(env!("CARGO_BIN_EXE_iiif-process-aws"), &bootstrap).unwrap();
    let mut api = RuntimeApi::start();
    let config = format!("s3://settings/iiif/config.json?region=us-east-1&endpoint={e}");
    let instructions =
        format!("s3://settings/iiif/instructions.json?region=us-east-1&endpoint={e}");
    let mut function = start_function(
        &moto,
        &api,
        &bootstrap,
        &[
            ("IIIF_CONFIG", config.clone()),
            ("IIIF_INSTRUCTIONS", instructions.clone()),
            ("IIIF_DISPATCH", "ecs".into()),
            ("IIIF_ECS_CLUSTER", "museum".into()),
            ("IIIF_ECS_TASK_DEFINITION", "iiif-process".into()),
            ("IIIF_ECS_SUBNETS", "subnet-1".into()),
            ("AWS_ENDPOINT_URL_ECS", ecs_endpoint),
        ],
    );

    // An SQS batch: the upload's notification, and a message that is no event (only it goes back to the queue).
    let upload = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "masters"}, "object": {"key": "scans/photos/big.jpg", "size": 1}}}]});
    let record = |id: &str, body: String| {
        json!({"messageId": id, "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
               "md5OfBody": "", "eventSource": "aws:sqs",
               "eventSourceARN": format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}"), "awsRegion": "us-east-1"})
    };
    let answer = api
        .invoke(
            &mut function,
            json!({"Records": [record("m1", upload.to_string()), record("m2", "not json".into())]}),
        )
        .expect("the dispatch's answer");
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "m2"}]),
        "{answer}"
    );
    assert_eq!(answer["sources"], json!(["photos/big.jpg"]), "{answer}");
    let (arn, command) = crate::task::started_task(&ecs, &rt);
    assert_eq!(answer["dispatched"], json!([arn]), "{answer}");
    assert_eq!(
        command,
        [
            format!("--config={config}"),
            format!("--instructions={instructions}"),
            "--report".into(),
            "--uri=photos/big.jpg".into()
        ]
    );
    assert!(
        moto.keys("derivs").is_empty(),
        "the function made derivatives itself"
    );
    // What the task does with that command: the derivatives, where the function would have put them.
    let reports = crate::task::run_as_the_task(&command);
    assert_eq!(reports["photos/big.jpg"].dimensions["b"], [256, 171]);
    assert!(moto
        .keys("derivs")
        .iter()
        .any(|k| k.ends_with("/process.json")));
    assert!(function.try_wait().unwrap().is_none());
    let _ = function.kill();
    let _ = function.wait();
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn uploads_become_derivatives_and_a_corrupt_master_fails_alone() {
    let moto = moto::start();
    for bucket in ["masters", "derivs", "settings"] {
        moto.create_bucket(bucket);
    }
    let queue_url = sqs(&moto, "CreateQueue", json!({"QueueName": QUEUE}))["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let notification = format!(
        "<NotificationConfiguration><QueueConfiguration><Id>uploads</Id>\
         <Queue>arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}</Queue><Event>s3:ObjectCreated:*</Event>\
         </QueueConfiguration></NotificationConfiguration>"
    );
    let (status, answer) = moto.call(
        "PUT",
        "/masters?notification",
        "s3",
        &[],
        notification.as_bytes(),
    );
    assert_eq!(
        status,
        200,
        "PutBucketNotificationConfiguration: {}",
        crate::text(&answer)
    );

    // The config from a bucket in go-iiif v8's source/name form; the instructions a file in the image.
    moto.put("settings", "iiif/config.json", CONFIG.as_bytes().to_vec());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("instructions.json"), INSTRUCTIONS).unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::fs::copy(env!("CARGO_BIN_EXE_iiif-process-aws"), &bootstrap).unwrap();

    let master = fixture("landscape.jpg");
    let jpeg = std::fs::read(&master).unwrap();
    moto.put("masters", "scans/photos/good one.jpg", jpeg.clone());
    // A JPEG cut off after its headers: a camera card pulled out too early.
    moto.put(
        "masters",
        "scans/photos/bad.jpg",
        jpeg[..jpeg.len() / 20].to_vec(),
    );
    let messages = received(&moto, &queue_url, 2);
    let good = &messages["scans/photos/good one.jpg"];
    let bad = &messages["scans/photos/bad.jpg"];

    let mut api = RuntimeApi::start();
    let instructions = dir.path().join("instructions.json");
    let mut function = start_function(
        &moto,
        &api,
        &bootstrap,
        &[
            (
                "IIIF_CONFIG_SOURCE",
                "s3://settings/iiif?region=us-east-1".into(),
            ),
            ("IIIF_INSTRUCTIONS", instructions.to_string_lossy().into()),
        ],
    );

    // The corrupt master's own notification, as S3 invokes a function directly: an error result.
    let bad_event: Value = serde_json::from_str(bad["Body"].as_str().unwrap()).unwrap();
    let answer = api.invoke(&mut function, bad_event);
    let error = answer.expect_err("a corrupt master must give an error result");
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("photos/bad.jpg"), "{error}");
    assert_eq!(error["errorType"], "iiif-process.SourcesFailed", "{error}");
    assert!(
        moto.keys("derivs").iter().all(|k| !k.contains("bad.jpg")),
        "{:?}",
        moto.keys("derivs")
    );

    // The same function serves the next event: the good master, in an EventBridge envelope.
    let eventbridge = json!({"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created", "source": "aws.s3", "account": ACCOUNT,
        "time": "2026-12-02T12:00:00Z", "region": "us-east-1", "resources": ["arn:aws:s3:::masters"],
        "detail": {"version": "0", "bucket": {"name": "masters"},
                   "object": {"key": "scans/photos/good+one.jpg", "size": jpeg.len()}, "reason": "PutObject"}});
    let report = api
        .invoke(&mut function, eventbridge)
        .expect("the good master's report");
    let source = &report["photos/good one.jpg"];
    assert_eq!(source["dimensions"]["b"], json!([256, 171]), "{report}");
    assert!(source["blurhash"].is_string(), "{report}");
    let keys = moto.keys("derivs");
    let derivative = |label: &str| {
        let path = source["uris"][label]
            .as_str()
            .unwrap_or_else(|| panic!("no uri for {label}: {report}"));
        // go-iiif v8's settings (IIIF_CONFIG_SOURCE) give v8's report: file:/// URIs, process_<hash>.json.
        let key = format!(
            "iiif/{}",
            path.trim_start_matches("file://").trim_start_matches('/')
        );
        assert!(keys.contains(&key), "{key} not in {keys:?}");
        key
    };
    let (b, sq) = (derivative("b"), derivative("sq"));
    assert_eq!(
        moto.served_as("derivs", &b).0.as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(
        moto.served_as("derivs", &sq).0.as_deref(),
        Some("image/png")
    );
    let diff = mean_difference(&moto.get("derivs", &b).unwrap(), &master);
    assert!(
        diff < 4.0,
        "the derivative differs from the master by {diff} on average"
    );
    let square = image::load_from_memory(&moto.get("derivs", &sq).unwrap()).unwrap();
    assert_eq!((square.width(), square.height()), (64, 64));
    // The report beside the derivatives, served as JSON.
    let written = keys
        .iter()
        .find(|k| k.starts_with("iiif/photos/good one.jpg/process_") && k.ends_with(".json"))
        .unwrap_or_else(|| panic!("no report in {keys:?}"));
    assert_eq!(
        moto.served_as("derivs", written).0.as_deref(),
        Some("application/json")
    );
    let written: Value = serde_json::from_slice(&moto.get("derivs", written).unwrap()).unwrap();
    // v8's report file holds the source's object alone.
    assert_eq!(written["uris"], source["uris"], "{written}");

    // Both uploads in one SQS batch: only the corrupt master's message is to be retried.
    let batch = json!({"Records": [lambda_record(good), lambda_record(bad)]});
    let answer = api
        .invoke(&mut function, batch)
        .expect("an SQS batch answers with its failures");
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": bad["MessageId"]}]),
        "{answer}"
    );
    assert!(
        answer["report"]["photos/good one.jpg"]["errors"].is_null(),
        "{answer}"
    );
    assert!(
        answer["report"]["photos/bad.jpg"]["errors"].is_object(),
        "{answer}"
    );

    // An SNS notification delivered to the function, and a body that is no event: its message alone fails.
    let sns = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "TopicArn": format!("arn:aws:sns:us-east-1:{ACCOUNT}:uploads"), "Message": good["Body"]}}]});
    let report = api
        .invoke(&mut function, sns)
        .expect("SNS: the good master's report");
    assert_eq!(
        report["photos/good one.jpg"]["dimensions"]["b"],
        json!([256, 171])
    );
    let mut broken = lambda_record(good);
    broken["messageId"] = json!("not-an-event");
    broken["body"] = json!("{\"hello\": 1}");
    let answer = api
        .invoke(
            &mut function,
            json!({"Records": [lambda_record(good), broken]}),
        )
        .expect("an SQS batch answers with its failures");
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "not-an-event"}]),
        "{answer}"
    );

    assert!(
        function.try_wait().unwrap().is_none(),
        "the function must keep serving"
    );
    let _ = function.kill();
    let _ = function.wait();
}

#[test]
fn a_function_without_settings_stops_at_start_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::fs::copy(env!("CARGO_BIN_EXE_iiif-process-aws"), &bootstrap).unwrap();
    let out = Command::new(&bootstrap)
        .env_remove("IIIF_CONFIG")
        .env_remove("IIIF_CONFIG_SOURCE")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", "iiif-process")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no config") && stderr.contains("IIIF_CONFIG_SOURCE"),
        "{stderr}"
    );
    // Outside Lambda: a message, not the runtime client's panic.
    let out = Command::new(&bootstrap)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API is not set") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
