//! `iiif-process-aws task` against moto's ECS, Batch and S3 APIs on a loopback port, driving the built binary.
//!
//! moto runs no containers: each test does what the container would. It reads the command the launcher gave the
//! task from moto, runs iiif-process's library with exactly that command against moto's S3 (so the derivatives and
//! reports are where the real task would put them), then marks the task stopped. The tests are `#[ignore]`d like
//! the core's object storage tests: `.ci/run` installs moto and runs them with `--include-ignored`, where a missing
//! `moto_server` is a failure.

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use iiif_process::report::SourceReport;
use iiif_process::{cli, plan::Plan, run, settings::Settings, store};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "AKIAMOTOTESTING";
const SECRET_KEY: &str = "moto-secret-never-printed";
const REGION: &str = "us-east-1";

struct Moto {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server on a free loopback port, with `env` added to its environment.
fn moto(env: &[(&str, &str)]) -> Moto {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!(
                    "moto_server is not on PATH (pip install 'moto[server]'); these tests need it"
                )
            }
            Err(e) => panic!("cannot start moto_server: {e}"),
        };
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if moto.child.try_wait().unwrap().is_some() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                moto._dir = dir;
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("moto_server did not start");
}

impl Moto {
    /// One HTTP request; the service is named in an (unchecked) signature, as moto routes by it.
    fn request(&self, method: &str, path: &str, service: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut body = raw[end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = unchunk(&body);
        }
        (status, body)
    }

    fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let (status, body) = self.request("PUT", &format!("/{bucket}/{key}"), "s3", bytes);
        assert_eq!(
            status,
            200,
            "PUT {bucket}/{key}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self.request("GET", &format!("/{bucket}/{key}"), "s3", b"");
        (status == 200).then_some(body)
    }

    fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.request("PUT", &format!("/{bucket}"), "s3", b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    fn moto_api(&self, path: &str, json: &str) {
        let (status, body) = self.request("POST", path, "s3", json.as_bytes());
        assert!(status < 300, "{path}: {}", String::from_utf8_lossy(&body));
    }

    fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(&self.endpoint)
                .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
                .build(),
        )
    }

    fn batch(&self) -> aws_sdk_batch::Client {
        aws_sdk_batch::Client::from_conf(
            aws_sdk_batch::Config::builder()
                .behavior_version(aws_sdk_batch::config::BehaviorVersion::latest())
                .region(aws_sdk_batch::config::Region::new(REGION))
                .endpoint_url(&self.endpoint)
                .credentials_provider(aws_sdk_batch::config::Credentials::new(
                    ACCESS_KEY, SECRET_KEY, None, None, "test",
                ))
                .build(),
        )
    }

    /// `-config` and `-instructions` in the masters bucket of this server (the endpoint in each URI, as in the
    /// config's own: the library in this process and the launcher both read them).
    fn settings(&self) -> Vec<String> {
        let e = &self.endpoint;
        vec![
            "-config".into(),
            format!("s3://masters/settings/config.json?endpoint={e}"),
            "-instructions".into(),
            format!("s3://masters/settings/instructions.json?endpoint={e}"),
        ]
    }

    /// The launcher, with the AWS environment of this server (the caller's AWS_* removed).
    fn launcher<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iiif-process-aws"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("task")
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 4 + size..];
    }
}

/// Arguments, with `SETTINGS` standing for [`Moto::settings`] and `MANIFEST` for the manifest's URI.
fn argv(m: &Moto, parts: &[&str]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| match *p {
            "SETTINGS" => m.settings(),
            "MANIFEST" => vec![format!(
                "s3://masters/settings/manifest.txt?endpoint={}",
                m.endpoint
            )],
            p => vec![p.to_string()],
        })
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    std::fs::read(root.join(name)).unwrap()
}

/// Buckets `masters` (settings under settings/, masters under masters/) and `iiif`, with one good master
/// (a.jpg) and one that is not an image (bad.jpg).
fn museum(m: &Moto) {
    m.create_bucket("masters");
    m.create_bucket("iiif");
    let e = &m.endpoint;
    m.put(
        "masters",
        "settings/config.json",
        format!(
            r#"{{"images": {{"source": {{"uri": "s3://masters/masters?endpoint={e}"}}}},
                "derivatives": {{"cache": {{"uri": "s3://iiif/derivatives?endpoint={e}"}}}}}}"#
        )
        .as_bytes(),
    );
    m.put(
        "masters",
        "settings/instructions.json",
        br#"{"thumb": {"region": "full", "size": "64,", "rotation": "0", "quality": "default", "format": "jpg"}}"#,
    );
    m.put("masters", "masters/a.jpg", &fixture("landscape.jpg"));
    m.put("masters", "masters/c.jpg", &fixture("crop_641x397.jpg"));
    m.put("masters", "masters/bad.jpg", b"not an image at all");
    m.put("masters", "settings/manifest.txt", b"a.jpg\nc.jpg\n");
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
fn run_as_the_task(command: &[String]) -> BTreeMap<String, SourceReport> {
    library_env();
    let argv = std::iter::once("iiif-process".to_string()).chain(command.iter().cloned());
    let args = cli::parse(argv).unwrap();
    let mut settings = Settings::from_args(&args).unwrap();
    settings.quiet = true;
    let sources = store::open(&settings.config.source, &settings.store_options).unwrap();
    let derivatives = store::open(&settings.config.derivatives, &settings.store_options).unwrap();
    let plan = Plan::build(&args, &settings, sources.as_ref()).unwrap();
    run::run(
        &settings,
        &plan,
        sources.as_ref(),
        derivatives.as_ref(),
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The ECS side: a cluster and a task definition whose container is `iiif-process`; tasks stay RUNNING until
/// stopped (moto would otherwise move them on by itself as they are described).
fn ecs_setup(m: &Moto, rt: &tokio::runtime::Runtime) -> aws_sdk_ecs::Client {
    m.moto_api(
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#,
    );
    let ecs = m.ecs();
    rt.block_on(async {
        ecs.create_cluster()
            .cluster_name("museum")
            .send()
            .await
            .unwrap();
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
    ecs
}

/// The one task the launcher started in the cluster, once it has: (ARN, the container's command).
fn started_task(ecs: &aws_sdk_ecs::Client, rt: &tokio::runtime::Runtime) -> (String, Vec<String>) {
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs moto_server on PATH (pip install 'moto[server]')"]
fn ecs_task_is_waited_for_and_its_reports_printed_with_the_exit_status() {
    let m = moto(&[]);
    museum(&m);
    let rt = runtime();
    let ecs = ecs_setup(&m, &rt);
    let launcher = m
        .launcher(&argv(
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
        ))
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
    assert!(m
        .get("iiif", "derivatives/a.jpg/full/64,/0/default.jpg")
        .is_some());
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
    let m = moto(&[]);
    museum(&m);
    let rt = runtime();
    let ecs = ecs_setup(&m, &rt);
    let out = m
        .launcher(&argv(
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
        ))
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
    let config = m.settings()[1].clone();
    let missing = format!("s3://masters/settings/missing.json?endpoint={}", m.endpoint);
    let out = m
        .launcher(&[
            "-cluster",
            "museum",
            "-task",
            "iiif-process",
            "-config",
            config.as_str(),
            "-instructions",
            missing.as_str(),
            "c.jpg",
        ])
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
    m.moto_api("/moto-api/config", r#"{"batch": {"use_docker": false}}"#);
    let role = "arn:aws:iam::123456789012:role/batch";
    let (status, body) = m.request(
        "POST",
        "/",
        "iam",
        b"Action=CreateRole&Version=2010-05-08&RoleName=batch&AssumeRolePolicyDocument=%7B%7D",
    );
    assert_eq!(status, 200, "{}", text(&body));
    let batch = m.batch();
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
    let m = moto(&[]);
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
                "-manifest",
                "MANIFEST",
                "-shard",
                &shard,
            ],
        );
        expected.extend(run_as_the_task(&command));
    }
    assert_eq!(expected.len(), 2);
    let out = m
        .launcher(&argv(
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
                "-poll-interval",
                "100ms",
                "SETTINGS",
            ],
        ))
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
    let m = moto(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]);
    museum(&m);
    let rt = runtime();
    batch_setup(&m, &rt);
    let out = m
        .launcher(&argv(
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
        ))
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
