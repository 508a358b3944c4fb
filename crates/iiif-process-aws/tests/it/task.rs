//! `iiif-process-aws task` against moto's ECS, Batch and S3 APIs on a loopback port, driving the built binary.
//!
//! moto runs no containers: each test does what the container would. It reads the command the launcher gave the
//! task from moto, runs iiif-process's library with exactly that command against moto's S3 (so the derivatives and
//! reports are where the real task would put them), then marks the task stopped.

use crate::moto::{self, Moto, ACCESS_KEY, REGION, SECRET_KEY};
use crate::text;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use iiif_process::report::SourceReport;
use iiif_process::{cli, plan::Plan, run, settings::Settings};
use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

/// moto's own API (`/moto-api/…`): its settings and state transitions.
fn moto_api(m: &Moto, path: &str, json: &str) {
    let (status, body) = m.call("POST", path, "s3", &[], json.as_bytes());
    assert!(status < 300, "{path}: {}", text(&body));
}

/// The test's ECS client, through `endpoint` (the proxy of [`ecs_proxy`]).
fn ecs(endpoint: &str) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .build(),
    )
}

fn batch(m: &Moto) -> aws_sdk_batch::Client {
    aws_sdk_batch::Client::from_conf(
        aws_sdk_batch::Config::builder()
            .behavior_version(aws_sdk_batch::config::BehaviorVersion::latest())
            .region(aws_sdk_batch::config::Region::new(REGION))
            .endpoint_url(&m.endpoint)
            .credentials_provider(aws_sdk_batch::config::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            ))
            .build(),
    )
}

/// `-config` and `-instructions` in the masters bucket of this server (the endpoint in each URI, as in the
/// config's own: the library in this process and the launcher both read them).
fn settings(m: &Moto) -> Vec<String> {
    let e = &m.endpoint;
    vec![
        "-config".into(),
        format!("s3://masters/settings/config.json?endpoint={e}"),
        "-instructions".into(),
        format!("s3://masters/settings/instructions.json?endpoint={e}"),
    ]
}

/// The launcher, with the AWS environment of this server (the caller's AWS_* removed).
fn launcher<S: AsRef<std::ffi::OsStr>>(m: &Moto, args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iiif-process-aws"));
    m.env(&mut cmd)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("task")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Arguments, with `SETTINGS` standing for [`Moto::settings`] and `MANIFEST` for the manifest's URI.
fn argv(m: &Moto, parts: &[&str]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| match *p {
            "SETTINGS" => settings(m),
            "MANIFEST" => vec![format!(
                "s3://masters/settings/manifest.txt?endpoint={}",
                m.endpoint
            )],
            p => vec![p.to_string()],
        })
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate::fixture(name)).unwrap()
}

/// Buckets `masters` (settings under settings/, masters under masters/) and `iiif`, with one good master
/// (a.jpg) and one that is not an image (bad.jpg).
fn museum(m: &Moto) {
    m.create_bucket("masters");
    m.create_bucket("iiif");
    let e = &m.endpoint;
    let config = format!(
        r#"{{"images": {{"source": {{"uri": "s3://masters/masters?endpoint={e}"}}}},
            "derivatives": {{"cache": {{"uri": "s3://iiif/derivatives?endpoint={e}"}}}}}}"#
    );
    m.put("masters", "settings/config.json", config.into_bytes());
    m.put("masters", "settings/instructions.json", br#"{"thumb": {"region": "full", "size": "64,", "rotation": "0", "quality": "default", "format": "jpg"}}"#.to_vec());
    m.put("masters", "masters/a.jpg", fixture("landscape.jpg"));
    m.put("masters", "masters/c.jpg", fixture("crop_641x397.jpg"));
    m.put(
        "masters",
        "masters/bad.jpg",
        b"not an image at all".to_vec(),
    );
    m.put(
        "masters",
        "settings/manifest.txt",
        b"a.jpg\nc.jpg\n".to_vec(),
    );
}

/// The environment the library reads its credentials from, set once for this process (the same for every test;
/// each server's endpoint is in the URIs).
fn library_env() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        std::env::set_var("AWS_REGION", REGION);
        std::env::remove_var("AWS_SESSION_TOKEN");
    });
}

/// What the container does with `command`: iiif-process's run, as its binary runs it.
pub(crate) fn run_as_the_task(command: &[String]) -> BTreeMap<String, SourceReport> {
    library_env();
    let argv = std::iter::once("iiif-process".to_string()).chain(command.iter().cloned());
    let args = cli::parse(argv).unwrap();
    let mut settings = Settings::from_args(&args).unwrap();
    settings.quiet = true;
    let stores = run::Stores::open(&settings).unwrap();
    let plan = Plan::build(&args, &settings, stores.sources.as_ref()).unwrap();
    run::run(
        &settings,
        &plan,
        stores.sources.as_ref(),
        stores.derivatives.as_ref(),
        stores.reports.as_deref(),
        &AtomicUsize::new(0),
        &|_, _| {},
    )
    .reports
}

fn wait(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: kill(2) on the child's own pid, which cannot be reused before it is waited for.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    out
}

/// A loopback proxy in front of moto's ECS API, for the launcher and the test's client: moto 5.2 writes each task
/// container's `cpu` and `memory` as numbers where the ECS API has strings, which the SDK refuses to read. The
/// proxy turns those numbers into strings and changes nothing else. Its endpoint, for `AWS_ENDPOINT_URL_ECS`.
pub(crate) fn ecs_proxy(m: &Moto) -> String {
    use std::io::{Read, Write};
    let server = tiny_http::Server::http("127.0.0.1:0").expect("cannot listen on loopback");
    let endpoint = format!("http://{}", server.server_addr().to_ip().unwrap());
    let port = m.port();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = request.as_reader().read_to_end(&mut body);
            let mut head = format!(
                "{} {} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
                request.method(),
                request.url(),
                body.len()
            );
            for h in request.headers() {
                let name = h.field.as_str().as_str();
                if !["host", "content-length", "connection", "transfer-encoding"]
                    .contains(&name.to_ascii_lowercase().as_str())
                {
                    head.push_str(&format!("{name}: {}\r\n", h.value));
                }
            }
            head.push_str("\r\n");
            let mut upstream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            upstream.write_all(head.as_bytes()).unwrap();
            upstream.write_all(&body).unwrap();
            let mut answer = Vec::new();
            upstream.read_to_end(&mut answer).unwrap();
            let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let answer_head = String::from_utf8_lossy(&answer[..end]).to_string();
            let status: u16 = answer_head
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let mut answer_body = answer[end + 4..].to_vec();
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&answer_body) {
                // RunTask and DescribeTasks answer with `tasks`, StopTask with one `task`.
                let mut tasks: Vec<&mut serde_json::Value> = Vec::new();
                if let Some(obj) = v.as_object_mut() {
                    for (k, t) in obj.iter_mut() {
                        match (k.as_str(), t) {
                            ("tasks", serde_json::Value::Array(a)) => tasks.extend(a.iter_mut()),
                            ("task", t) => tasks.push(t),
                            _ => {}
                        }
                    }
                }
                for task in tasks {
                    let containers = task.get_mut("containers").and_then(|c| c.as_array_mut());
                    for c in containers.into_iter().flatten() {
                        for field in ["cpu", "memory"] {
                            if let Some(n) = c.get(field).filter(|n| n.is_number()) {
                                c[field] = serde_json::Value::String(n.to_string());
                            }
                        }
                    }
                }
                answer_body = serde_json::to_vec(&v).unwrap();
            }
            let mut response = tiny_http::Response::from_data(answer_body).with_status_code(status);
            for line in answer_head.lines().skip(1) {
                if let Some((n, v)) = line.split_once(':') {
                    if n.eq_ignore_ascii_case("content-type") {
                        response.add_header(tiny_http::Header::from_bytes(n, v.trim()).unwrap());
                    }
                }
            }
            let _ = request.respond(response);
        }
    });
    endpoint
}

/// The ECS side: a cluster and a task definition whose container is `iiif-process`; tasks stay RUNNING until
/// stopped (moto would otherwise move them on by itself as they are described). The client, and the endpoint
/// for `AWS_ENDPOINT_URL_ECS`.
pub(crate) fn ecs_setup(m: &Moto, rt: &tokio::runtime::Runtime) -> (aws_sdk_ecs::Client, String) {
    moto_api(
        m,
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#,
    );
    let endpoint = ecs_proxy(m);
    let ecs = ecs(&endpoint);
    rt.block_on(async {
        ecs.create_cluster()
            .cluster_name("museum")
            .send()
            .await
            .unwrap();
    });
    rt.block_on(async {
        ecs.register_task_definition()
            .family("iiif-process")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("iiif-process")
                    .image("iiif-process:latest")
                    .memory(2048)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    (ecs, endpoint)
}

/// The one task the launcher started in the cluster, once it has: (ARN, the container's command).
pub(crate) fn started_task(
    ecs: &aws_sdk_ecs::Client,
    rt: &tokio::runtime::Runtime,
) -> (String, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    rt.block_on(async {
        loop {
            let arns = ecs
                .list_tasks()
                .cluster("museum")
                .send()
                .await
                .unwrap()
                .task_arns()
                .to_vec();
            if let [arn] = &arns[..] {
                let d = ecs
                    .describe_tasks()
                    .cluster("museum")
                    .tasks(arn)
                    .send()
                    .await
                    .unwrap();
                let task = &d.tasks()[0];
                let o = &task.overrides().unwrap().container_overrides()[0];
                assert_eq!(o.name(), Some("iiif-process"));
                assert_eq!(task.started_by(), Some("iiif-process-aws"));
                return (arn.clone(), o.command().to_vec());
            }
            assert!(arns.len() < 2, "{arns:?}");
            assert!(Instant::now() < deadline, "the launcher started no task");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn ecs_task_is_waited_for_and_its_reports_printed_with_the_exit_status() {
    let m = moto::start();
    museum(&m);
    let rt = runtime();
    let (ecs, ecs_endpoint) = ecs_setup(&m, &rt);
    let launcher = launcher(
        &m,
        &argv(
            &m,
            &[
                "-cluster",
                "museum",
                "-task",
                "iiif-process",
                "-subnet",
                "subnet-1",
                "-poll-interval",
                "100ms",
                "SETTINGS",
                "-uri",
                "a.jpg",
                "bad.jpg",
            ],
        ),
    )
    .env("AWS_ENDPOINT_URL_ECS", &ecs_endpoint)
    .spawn()
    .unwrap();

    let (arn, command) = started_task(&ecs, &rt);
    // Still waiting: the task has not stopped.
    std::thread::sleep(Duration::from_millis(500));
    let mut launcher = launcher;
    assert!(
        launcher.try_wait().unwrap().is_none(),
        "the launcher did not wait"
    );
    let expected = run_as_the_task(&command);
    // The report files are where the launcher will look (beside each source's derivatives).
    assert!(m.get("iiif", "derivatives/a.jpg/process.json").is_some());
    assert!(
        m.get("iiif", "derivatives/a.jpg/full/64,/0/color.jpg")
            .is_some(),
        "{:?}",
        m.keys("iiif")
    );
    rt.block_on(async {
        ecs.stop_task()
            .cluster("museum")
            .task(&arn)
            .reason("Essential container in task exited")
            .send()
            .await
            .unwrap();
    });
    let out = wait(launcher, Duration::from_secs(120));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stderr.contains(&format!(
            "{arn} stopped: exit code 0 (Essential container in task exited)"
        )),
        "{stderr}"
    );
    // Exit 1: bad.jpg failed (the task wrote no report for it), a.jpg is done.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let printed: BTreeMap<String, SourceReport> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed.keys().collect::<Vec<_>>(), ["a.jpg", "bad.jpg"]);
    assert_eq!(printed["a.jpg"], expected["a.jpg"]);
    assert_eq!(printed["a.jpg"].dimensions["thumb"][0], 64);
    assert!(expected["bad.jpg"].errors.contains_key("thumb"));
    let why = &printed["bad.jpg"].errors["thumb"];
    assert!(
        why.contains("no report at s3://iiif/derivatives/bad.jpg/process.json"),
        "{why}"
    );
    // Printed as iiif-process prints its report: pretty, keys sorted.
    assert_eq!(
        stdout.trim_end(),
        iiif_process::report::to_pretty_json(&printed)
    );
    assert!(!stdout.contains(SECRET_KEY) && !stderr.contains(SECRET_KEY));
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn ecs_task_without_wait_prints_its_arn_and_a_bad_setting_starts_nothing() {
    let m = moto::start();
    museum(&m);
    let rt = runtime();
    let (ecs, ecs_endpoint) = ecs_setup(&m, &rt);
    let out = launcher(
        &m,
        &argv(
            &m,
            &[
                "-cluster",
                "museum",
                "-task",
                "iiif-process",
                "-wait=false",
                "SETTINGS",
                "c.jpg",
            ],
        ),
    )
    .env("AWS_ENDPOINT_URL_ECS", &ecs_endpoint)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (arn, command) = started_task(&ecs, &rt);
    assert_eq!(text(&out.stdout).trim(), arn);
    assert_eq!(
        command,
        argv(
            &m,
            &[
                "SETTINGS",
                "-report",
                "-report-name",
                "process.json",
                "-uri",
                "c.jpg"
            ]
        )
    );

    // Instructions that do not exist: exit 2 before anything is started.
    let config = settings(&m)[1].clone();
    let missing = format!("s3://masters/settings/missing.json?endpoint={}", m.endpoint);
    let out = launcher(
        &m,
        &[
            "-cluster",
            "museum",
            "-task",
            "iiif-process",
            "-config",
            config.as_str(),
            "-instructions",
            missing.as_str(),
            "c.jpg",
        ],
    )
    .output()
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    let tasks = rt.block_on(async {
        ecs.list_tasks()
            .cluster("museum")
            .send()
            .await
            .unwrap()
            .task_arns()
            .len()
    });
    assert_eq!(tasks, 1, "a task was started for bad settings");
}

/// AWS Batch through an unmanaged compute environment and a queue; jobs run no container and succeed at once
/// (or fail, with MOTO_SIMPLE_BATCH_FAIL_AFTER=0).
fn batch_setup(m: &Moto, rt: &tokio::runtime::Runtime) -> aws_sdk_batch::Client {
    moto_api(m, "/moto-api/config", r#"{"batch": {"use_docker": false}}"#);
    let role = "arn:aws:iam::123456789012:role/batch";
    let (status, body) = m.call(
        "POST",
        "/",
        "iam",
        &[("Content-Type", "application/x-www-form-urlencoded".into())],
        b"Action=CreateRole&Version=2010-05-08&RoleName=batch&AssumeRolePolicyDocument=%7B%7D",
    );
    assert_eq!(status, 200, "{}", text(&body));
    let batch = batch(m);
    rt.block_on(async {
        let ce = batch
            .create_compute_environment()
            .compute_environment_name("museum")
            .r#type(aws_sdk_batch::types::CeType::Unmanaged)
            .state(aws_sdk_batch::types::CeState::Enabled)
            .service_role(role)
            .send()
            .await
            .unwrap();
        batch
            .create_job_queue()
            .job_queue_name("museum")
            .priority(1)
            .state(aws_sdk_batch::types::JqState::Enabled)
            .compute_environment_order(
                aws_sdk_batch::types::ComputeEnvironmentOrder::builder()
                    .order(1)
                    .compute_environment(ce.compute_environment_arn().unwrap())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        batch
            .register_job_definition()
            .job_definition_name("iiif-process")
            .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
            .container_properties(
                aws_sdk_batch::types::ContainerProperties::builder()
                    .image("iiif-process:latest")
                    .resource_requirements(
                        aws_sdk_batch::types::ResourceRequirement::builder()
                            .r#type(aws_sdk_batch::types::ResourceType::Vcpu)
                            .value("2")
                            .build(),
                    )
                    .resource_requirements(
                        aws_sdk_batch::types::ResourceRequirement::builder()
                            .r#type(aws_sdk_batch::types::ResourceType::Memory)
                            .value("4096")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    batch
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn batch_array_job_shards_a_manifest_and_prints_every_report() {
    let m = moto::start();
    museum(&m);
    let rt = runtime();
    let batch = batch_setup(&m, &rt);
    // moto's jobs succeed as they are submitted, so the children's work is done first: each shard of the
    // manifest, as the launcher will ask for it.
    let mut expected = BTreeMap::new();
    for i in 0..2 {
        let shard = format!("{i}/2");
        let command = argv(
            &m,
            &[
                "SETTINGS",
                "-report",
                "-report-template",
                "reports/{sha256_origin}.json",
                "-manifest",
                "MANIFEST",
                "-shard",
                &shard,
            ],
        );
        expected.extend(run_as_the_task(&command));
    }
    assert_eq!(expected.len(), 2);
    let out = launcher(
        &m,
        &argv(
            &m,
            &[
                "-batch-queue",
                "museum",
                "-batch-job-definition",
                "iiif-process",
                "-array-size",
                "2",
                "-shard",
                "auto",
                "-manifest",
                "MANIFEST",
                "-report-template",
                "reports/{sha256_origin}.json",
                "-poll-interval",
                "100ms",
                "SETTINGS",
            ],
        ),
    )
    .output()
    .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("SUCCEEDED; children: SUCCEEDED 2"),
        "{stderr}"
    );
    let printed: BTreeMap<String, SourceReport> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed, expected);
    // Read back from where -report-template put them: go-iiif v8's one report object per file.
    let keys = m.keys("iiif");
    assert_eq!(
        keys.iter()
            .filter(|k| k.contains("/reports/") && k.ends_with(".json"))
            .count(),
        2,
        "{keys:?}"
    );

    // The job as submitted: an array of 2, each child given its share by -shard auto -shard-count 2.
    let jobs = rt.block_on(async {
        batch
            .list_jobs()
            .job_queue("museum")
            .job_status(aws_sdk_batch::types::JobStatus::Succeeded)
            .send()
            .await
            .unwrap()
    });
    let id = jobs.job_summary_list()[0].job_id().unwrap().to_string();
    let job = rt.block_on(async { batch.describe_jobs().jobs(&id).send().await.unwrap() });
    let job = &job.jobs()[0];
    assert_eq!(job.array_properties().and_then(|a| a.size()), Some(2));
    let command = job.container().unwrap().command();
    assert!(
        command.ends_with(&[
            "-shard".to_string(),
            "auto".into(),
            "-shard-count".into(),
            "2".into()
        ]),
        "{command:?}"
    );
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn a_failed_batch_job_fails_the_launcher() {
    let m = moto::start_with(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]);
    museum(&m);
    let rt = runtime();
    batch_setup(&m, &rt);
    let out = launcher(
        &m,
        &argv(
            &m,
            &[
                "-batch-queue",
                "museum",
                "-batch-job-definition",
                "iiif-process",
                "-poll-interval",
                "100ms",
                "SETTINGS",
                "a.jpg",
            ],
        ),
    )
    .output()
    .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(" stopped: no exit code (FAILED"),
        "{stderr}"
    );
    let printed: BTreeMap<String, SourceReport> = serde_json::from_str(&stdout).unwrap();
    assert!(
        printed["a.jpg"].errors["thumb"].contains("no report at"),
        "{stdout}"
    );
}
