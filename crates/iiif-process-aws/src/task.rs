//! `iiif-process-aws task`: run `iiif-process` in its container as an ECS task or an AWS Batch (array) job, wait
//! for it to stop, then read the reports it wrote beside the derivatives and print them as `iiif-process` prints
//! its own, with its exit status. go-iiif-aws's `iiif-process-ecs -mode task` stops once the task is registered;
//! here the caller learns when the work is done and whether it worked.
//!
//! [`dispatch`] is the launching half alone, for the Lambda's `IIIF_DISPATCH=ecs|batch`.

use aws_sdk_batch::types::{ArrayProperties, ContainerOverrides, JobStatus};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, LaunchType, NetworkConfiguration,
    TaskOverride,
};
use clap::{CommandFactory, Parser};
use iiif_process::plan::{Plan, PlannedSource};
use iiif_process::report::{self, to_pretty_json, SourceReport};
use iiif_process::settings::Settings;
use iiif_process::store::{Store, StoreError};
use iiif_process::{cli, naming, run};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The flags of `iiif-process-aws task`, named as go-iiif-aws's `iiif-process-ecs` names them where it has them.
#[derive(Parser, Debug, Clone)]
#[command(
    about = "Run iiif-process as an ECS task or an AWS Batch job, wait for it, and print its report",
    after_help = "Flags after `--` are passed to iiif-process unchanged (e.g. -- -skip-existing -webp-quality 90)."
)]
pub struct TaskArgs {
    /// ECS cluster to run the task in
    #[arg(long, value_name = "NAME|ARN")]
    pub cluster: Option<String>,
    /// ECS task definition (family, family:revision or ARN) whose container runs iiif-process
    #[arg(long = "task", value_name = "TASK_DEFINITION")]
    pub task_definition: Option<String>,
    /// Name of the container in the task definition that runs iiif-process
    #[arg(long, value_name = "NAME", default_value = "iiif-process")]
    pub container: String,
    /// Subnet for the task's network interface (awsvpc; repeatable or comma-separated)
    #[arg(long = "subnet", value_name = "ID", value_delimiter = ',')]
    pub subnets: Vec<String>,
    /// Security group for the task's network interface (repeatable or comma-separated)
    #[arg(long = "security-group", value_name = "ID", value_delimiter = ',')]
    pub security_groups: Vec<String>,
    /// Give the task a public IP address (a public subnet without a NAT gateway needs one to reach ECR and S3)
    #[arg(long)]
    pub public_ip: bool,
    /// ECS launch type: FARGATE, EC2 or EXTERNAL
    #[arg(long, value_name = "TYPE", default_value = "FARGATE", value_parser = ["FARGATE", "EC2", "EXTERNAL"])]
    pub launch_type: String,
    /// AWS region (default: AWS_REGION, then the profile's)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS Batch job queue: submit a Batch job instead of an ECS task
    #[arg(long, value_name = "NAME|ARN")]
    pub batch_queue: Option<String>,
    /// AWS Batch job definition whose container runs iiif-process
    #[arg(long, value_name = "NAME|ARN")]
    pub batch_job_definition: Option<String>,
    /// Children of the Batch array job (2-10000), each processing its share with -shard auto
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(2..=10000))]
    pub array_size: Option<i32>,
    /// Name of the Batch job
    #[arg(long, value_name = "NAME", default_value = "iiif-process")]
    pub job_name: String,

    /// iiif-process config, as a bucket URI (s3://bucket/key) that the task and this launcher both read
    #[arg(long, value_name = "URI")]
    pub config: String,
    /// iiif-process instructions, as a bucket URI (s3://bucket/key)
    #[arg(long, value_name = "URI")]
    pub instructions: String,
    /// Source to process, relative to the config's images.source (repeatable)
    #[arg(long = "uri", value_name = "URI")]
    pub uri: Vec<String>,
    /// More sources, as with -uri
    #[arg(value_name = "URI")]
    pub uris: Vec<String>,
    /// A manifest of sources in a bucket (s3://bucket/key), one URI per line
    #[arg(long, value_name = "URI")]
    pub manifest: Option<String>,
    /// `auto`: each child of the Batch array job processes its share of the sources (needs -array-size)
    #[arg(long, value_name = "auto", value_parser = ["auto"])]
    pub shard: Option<String>,
    /// File name of each source's report, written beside its derivatives and read back from there
    #[arg(long, value_name = "NAME", default_value = "process.json")]
    pub report_name: String,
    /// go-iiif v8's report name instead (RFC 6570, e.g. process_{sha256_origin}.json): one report object per file
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "report_name")]
    pub report_template: Option<String>,

    /// Wait for the task to stop and print its report (-wait=false: print the task or job ARN and exit)
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How often to ask whether the task has stopped, e.g. 10s
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = cli::parse_positive_duration)]
    pub poll_interval: Duration,

    /// Flags passed to iiif-process unchanged
    #[arg(last = true, value_name = "IIIF_PROCESS_FLAGS")]
    pub pass: Vec<String>,
}

/// Where the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ecs(EcsTarget),
    Batch(BatchTarget),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsTarget {
    pub cluster: String,
    pub task_definition: String,
    pub container: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub public_ip: bool,
    pub launch_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTarget {
    pub queue: String,
    pub job_definition: String,
    pub job_name: String,
    /// Children of an array job; `None` submits a single job.
    pub array_size: Option<i32>,
}

/// A task or job that was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub arn: String,
    /// The Batch job ID (what DescribeJobs takes); the ARN again for ECS.
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("ECS {action}: {message}")]
    Ecs {
        action: &'static str,
        message: String,
    },
    #[error("AWS Batch {action}: {message}")]
    Batch {
        action: &'static str,
        message: String,
    },
    #[error("ECS RunTask started no task: {reasons}")]
    NotStarted { reasons: String },
    #[error("{what} {id} is not known to {service} any more")]
    Vanished {
        what: &'static str,
        id: String,
        service: &'static str,
    },
}

/// Why the environment does not name a dispatch target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("IIIF_DISPATCH={0:?}: expected ecs or batch")]
    Kind(String),
    #[error("IIIF_DISPATCH={kind} needs {name}")]
    Missing {
        kind: &'static str,
        name: &'static str,
    },
    #[error("{name}={value:?}: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Target {
    /// The target the Lambda dispatches to, from its environment (`get` is `std::env::var(..).ok()`):
    /// `IIIF_DISPATCH=ecs` with `IIIF_ECS_CLUSTER`, `IIIF_ECS_TASK_DEFINITION`, and optionally
    /// `IIIF_ECS_CONTAINER` (default iiif-process), `IIIF_ECS_SUBNETS`, `IIIF_ECS_SECURITY_GROUPS` (comma-separated),
    /// `IIIF_ECS_LAUNCH_TYPE` (default FARGATE), `IIIF_ECS_PUBLIC_IP` (true/false); or `IIIF_DISPATCH=batch` with
    /// `IIIF_BATCH_JOB_QUEUE`, `IIIF_BATCH_JOB_DEFINITION`, and optionally `IIIF_BATCH_JOB_NAME`.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Target, TargetError> {
        let kind = get("IIIF_DISPATCH").unwrap_or_default();
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        match kind.as_str() {
            "ecs" => {
                let need = |name: &'static str| {
                    get(name)
                        .filter(|v| !v.is_empty())
                        .ok_or(TargetError::Missing { kind: "ecs", name })
                };
                let launch_type = get("IIIF_ECS_LAUNCH_TYPE").unwrap_or_else(|| "FARGATE".into());
                if !matches!(launch_type.as_str(), "FARGATE" | "EC2" | "EXTERNAL") {
                    return Err(TargetError::Invalid {
                        name: "IIIF_ECS_LAUNCH_TYPE",
                        value: launch_type,
                        expected: "FARGATE, EC2 or EXTERNAL",
                    });
                }
                let public_ip = match get("IIIF_ECS_PUBLIC_IP").as_deref() {
                    None | Some("" | "false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(TargetError::Invalid {
                            name: "IIIF_ECS_PUBLIC_IP",
                            value: other.to_string(),
                            expected: "true or false",
                        })
                    }
                };
                Ok(Target::Ecs(EcsTarget {
                    cluster: need("IIIF_ECS_CLUSTER")?,
                    task_definition: need("IIIF_ECS_TASK_DEFINITION")?,
                    container: get("IIIF_ECS_CONTAINER")
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| "iiif-process".into()),
                    subnets: list("IIIF_ECS_SUBNETS"),
                    security_groups: list("IIIF_ECS_SECURITY_GROUPS"),
                    public_ip,
                    launch_type,
                }))
            }
            "batch" => {
                let need = |name: &'static str| {
                    get(name)
                        .filter(|v| !v.is_empty())
                        .ok_or(TargetError::Missing {
                            kind: "batch",
                            name,
                        })
                };
                Ok(Target::Batch(BatchTarget {
                    queue: need("IIIF_BATCH_JOB_QUEUE")?,
                    job_definition: need("IIIF_BATCH_JOB_DEFINITION")?,
                    job_name: get("IIIF_BATCH_JOB_NAME")
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| "iiif-process".into()),
                    array_size: None,
                }))
            }
            _ => Err(TargetError::Kind(kind)),
        }
    }
}

/// The AWS configuration of the environment (credentials, AWS_ENDPOINT_URL, …), in `region` when one is given.
async fn aws_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    loader.load().await
}

/// An SDK error with its whole chain of causes (the SDK's own Display says only "service error").
fn sdk_message(e: &(dyn std::error::Error + 'static)) -> String {
    aws_sdk_ecs::error::DisplayErrorContext(e).to_string()
}

/// Start `command` (iiif-process's arguments, without the program name) as the container's command on `target`,
/// with the AWS configuration of the environment (`region` overrides its region). Returns what was started:
/// one ECS task, or one Batch job (an array job when `array_size` is set). Waits for nothing.
pub async fn dispatch(
    target: &Target,
    command: Vec<String>,
    region: Option<&str>,
) -> Result<Vec<Launched>, TaskError> {
    let config = aws_config(region).await;
    match target {
        Target::Ecs(t) => run_task(&aws_sdk_ecs::Client::new(&config), t, command).await,
        Target::Batch(t) => submit_job(&aws_sdk_batch::Client::new(&config), t, command)
            .await
            .map(|l| vec![l]),
    }
}

async fn run_task(
    ecs: &aws_sdk_ecs::Client,
    t: &EcsTarget,
    command: Vec<String>,
) -> Result<Vec<Launched>, TaskError> {
    let error = |message: String| TaskError::Ecs {
        action: "RunTask",
        message,
    };
    let mut request = ecs
        .run_task()
        .cluster(&t.cluster)
        .task_definition(&t.task_definition)
        .count(1)
        .launch_type(LaunchType::from(t.launch_type.as_str()))
        .started_by("iiif-process-aws")
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name(&t.container)
                        .set_command(Some(command))
                        .build(),
                )
                .build(),
        );
    if !t.subnets.is_empty() {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(t.subnets.clone()))
            .set_security_groups((!t.security_groups.is_empty()).then(|| t.security_groups.clone()))
            .assign_public_ip(if t.public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| error(e.to_string()))?;
        request = request.network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        );
    }
    let out = request.send().await.map_err(|e| error(sdk_message(&e)))?;
    let launched: Vec<Launched> = out
        .tasks()
        .iter()
        .filter_map(|t| t.task_arn())
        .map(|arn| Launched {
            arn: arn.to_string(),
            id: arn.to_string(),
        })
        .collect();
    if launched.is_empty() {
        let reasons: Vec<String> = out
            .failures()
            .iter()
            .map(|f| {
                let mut s = f.reason().unwrap_or("no reason given").to_string();
                if let Some(d) = f.detail() {
                    s.push_str(&format!(" ({d})"));
                }
                if let Some(a) = f.arn() {
                    s.push_str(&format!(": {a}"));
                }
                s
            })
            .collect();
        return Err(TaskError::NotStarted {
            reasons: if reasons.is_empty() {
                "no failure given".into()
            } else {
                reasons.join("; ")
            },
        });
    }
    Ok(launched)
}

async fn submit_job(
    batch: &aws_sdk_batch::Client,
    t: &BatchTarget,
    command: Vec<String>,
) -> Result<Launched, TaskError> {
    let mut request = batch
        .submit_job()
        .job_name(&t.job_name)
        .job_queue(&t.queue)
        .job_definition(&t.job_definition)
        .container_overrides(
            ContainerOverrides::builder()
                .set_command(Some(command))
                .build(),
        );
    if let Some(size) = t.array_size {
        request = request.array_properties(ArrayProperties::builder().size(size).build());
    }
    let out = request.send().await.map_err(|e| TaskError::Batch {
        action: "SubmitJob",
        message: sdk_message(&e),
    })?;
    let id = out.job_id().ok_or_else(|| TaskError::Batch {
        action: "SubmitJob",
        message: "the answer names no job ID".into(),
    })?;
    Ok(Launched {
        arn: out.job_arn().unwrap_or(id).to_string(),
        id: id.to_string(),
    })
}

/// How a task or job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub arn: String,
    /// The exit code of iiif-process's container, when it ran.
    pub exit_code: Option<i32>,
    pub succeeded: bool,
    /// The stop reason, status and counts, for the log.
    pub description: String,
}

async fn wait_for_task(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    container: &str,
    launched: &Launched,
    every: Duration,
) -> Result<Ended, TaskError> {
    loop {
        let out = ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(&launched.id)
            .send()
            .await
            .map_err(|e| TaskError::Ecs {
                action: "DescribeTasks",
                message: sdk_message(&e),
            })?;
        let task = out
            .tasks()
            .iter()
            .find(|t| t.task_arn() == Some(launched.arn.as_str()))
            .ok_or_else(|| TaskError::Vanished {
                what: "task",
                id: launched.arn.clone(),
                service: "ECS",
            })?;
        if task.last_status() == Some("STOPPED") {
            let c = task
                .containers()
                .iter()
                .find(|c| c.name() == Some(container))
                .or_else(|| task.containers().first());
            let exit_code = c.and_then(|c| c.exit_code());
            let mut description = task.stopped_reason().unwrap_or("").to_string();
            if let Some(reason) = c.and_then(|c| c.reason()).filter(|r| !r.is_empty()) {
                description = [description.as_str(), reason]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("; ");
            }
            if let Some(code) = task.stop_code() {
                description = format!("{}: {description}", code.as_str());
            }
            return Ok(Ended {
                arn: launched.arn.clone(),
                exit_code,
                succeeded: exit_code == Some(0),
                description,
            });
        }
        tokio::time::sleep(every).await;
    }
}

async fn wait_for_job(
    batch: &aws_sdk_batch::Client,
    launched: &Launched,
    every: Duration,
) -> Result<Ended, TaskError> {
    loop {
        let out = batch
            .describe_jobs()
            .jobs(&launched.id)
            .send()
            .await
            .map_err(|e| TaskError::Batch {
                action: "DescribeJobs",
                message: sdk_message(&e),
            })?;
        let job = out
            .jobs()
            .iter()
            .find(|j| j.job_id() == Some(launched.id.as_str()))
            .ok_or_else(|| TaskError::Vanished {
                what: "job",
                id: launched.id.clone(),
                service: "AWS Batch",
            })?;
        let status = job.status();
        if matches!(status, Some(JobStatus::Succeeded | JobStatus::Failed)) {
            let exit_code = job.container().and_then(|c| c.exit_code());
            let mut parts = vec![status.map_or("", |s| s.as_str()).to_string()];
            if let Some(r) = job.status_reason().filter(|r| !r.is_empty()) {
                parts.push(r.to_string());
            }
            if let Some(r) = job.container().and_then(|c| c.reason()) {
                parts.push(r.to_string());
            }
            if let Some(summary) = job.array_properties().and_then(|a| a.status_summary()) {
                let mut counts: Vec<String> = summary
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(s, n)| format!("{s} {n}"))
                    .collect();
                counts.sort();
                parts.push(format!("children: {}", counts.join(", ")));
            }
            return Ok(Ended {
                arn: launched.arn.clone(),
                exit_code,
                succeeded: status == Some(&JobStatus::Succeeded),
                description: parts.join("; "),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// What the launcher does, checked: where, the container's command, and the arguments to plan with here.
#[derive(Debug)]
struct Launch {
    target: Target,
    /// iiif-process's arguments in the container.
    command: Vec<String>,
    /// The same without `-shard auto` (every shard's sources are read back here), with the program name.
    local: Vec<String>,
}

impl TaskArgs {
    /// Parse `iiif-process-aws task`'s arguments (`argv[0]` is the subcommand's name), go-iiif style flags too.
    pub fn parse_from(argv: Vec<std::ffi::OsString>) -> Result<TaskArgs, clap::Error> {
        let cmd = TaskArgs::command();
        TaskArgs::try_parse_from(cli::go_style_for(&cmd, argv)?)
    }

    fn usage(&self, message: String) -> clap::Error {
        TaskArgs::command().error(clap::error::ErrorKind::ArgumentConflict, message)
    }

    fn launch(&self) -> Result<Launch, clap::Error> {
        let target = match (
            &self.cluster,
            &self.task_definition,
            &self.batch_queue,
            &self.batch_job_definition,
        ) {
            (Some(cluster), Some(task), None, None) => {
                if self.array_size.is_some() || self.shard.is_some() {
                    return Err(self.usage(
                        "-array-size and -shard auto need an AWS Batch array job (-batch-queue, \
                         -batch-job-definition); an ECS task has no index to shard by"
                            .into(),
                    ));
                }
                Target::Ecs(EcsTarget {
                    cluster: cluster.clone(),
                    task_definition: task.clone(),
                    container: self.container.clone(),
                    subnets: self.subnets.clone(),
                    security_groups: self.security_groups.clone(),
                    public_ip: self.public_ip,
                    launch_type: self.launch_type.clone(),
                })
            }
            (None, None, Some(queue), Some(definition)) => {
                if self.shard.is_some() != self.array_size.is_some() {
                    return Err(self.usage(
                        "-shard auto and -array-size go together: each child of the array job takes its \
                         share, and without -shard every child would process every source"
                            .into(),
                    ));
                }
                Target::Batch(BatchTarget {
                    queue: queue.clone(),
                    job_definition: definition.clone(),
                    job_name: self.job_name.clone(),
                    array_size: self.array_size,
                })
            }
            _ => {
                return Err(self.usage(
                    "give either -cluster and -task (an ECS task) or -batch-queue and \
                     -batch-job-definition (an AWS Batch job)"
                        .into(),
                ))
            }
        };
        let mut local = vec![
            "-config".to_string(),
            self.config.clone(),
            "-instructions".to_string(),
            self.instructions.clone(),
            "-report".to_string(),
        ];
        match &self.report_template {
            Some(t) => local.extend(["-report-template".to_string(), t.clone()]),
            None => local.extend(["-report-name".to_string(), self.report_name.clone()]),
        }
        if let Some(m) = &self.manifest {
            local.extend(["-manifest".to_string(), m.clone()]);
        }
        for u in self.uri.iter().chain(&self.uris) {
            local.extend(["-uri".to_string(), u.clone()]);
        }
        local.extend(self.pass.iter().cloned());
        let mut command = local.clone();
        // AWS Batch sets each child's AWS_BATCH_JOB_ARRAY_INDEX but not the array's size, and names beginning
        // AWS_BATCH are reserved: the count goes on the command line.
        if let (Some(s), Some(n)) = (&self.shard, self.array_size) {
            command.extend([
                "-shard".to_string(),
                s.clone(),
                "-shard-count".to_string(),
                n.to_string(),
            ]);
        }
        local.insert(0, "iiif-process".to_string());
        Ok(Launch {
            target,
            command,
            local,
        })
    }
}

/// A run of `iiif-process-aws task`; the exit status as `iiif-process`'s: 0 all done, 1 a source failed (or the
/// task did), 2 the run could not start, 128+N stopped by signal N (the task's own status, when it is one of
/// these).
pub fn main(args: TaskArgs) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("iiif-process-aws: {e}");
        ExitCode::from(2)
    };
    let launch = match args.launch() {
        Ok(l) => l,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    // The same settings and sources the task will have, checked before anything starts; the derivatives store
    // is where the reports are read back from.
    let core_args = match cli::parse(&launch.local) {
        Ok(a) => a,
        Err(e) => return fail(&format!("the iiif-process flags: {e}").trim_end()),
    };
    let settings = match Settings::from_args(&core_args) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // The report bucket of go-iiif v8's -report-bucket-uri (passed after --) holds the reports, if there is one.
    let stores = match run::Stores::open(&settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let plan = if args.wait {
        match Plan::build(&core_args, &settings, stores.sources.as_ref()) {
            Ok(p) => Some(p),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };

    // The SDK's calls need a runtime; the core's stores run their own, so they are used outside this one.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the I/O runtime: {e}")),
    };
    let ended: Result<Result<Vec<Ended>, Vec<Launched>>, TaskError> = runtime.block_on(async {
        let config = aws_config(args.region.as_deref()).await;
        let launched = match &launch.target {
            Target::Ecs(t) => {
                run_task(
                    &aws_sdk_ecs::Client::new(&config),
                    t,
                    launch.command.clone(),
                )
                .await?
            }
            Target::Batch(t) => vec![
                submit_job(
                    &aws_sdk_batch::Client::new(&config),
                    t,
                    launch.command.clone(),
                )
                .await?,
            ],
        };
        if !args.wait {
            return Ok(Err(launched));
        }
        let mut ended = Vec::new();
        for l in &launched {
            eprintln!("iiif-process-aws: started {}", l.arn);
            let e = match &launch.target {
                Target::Ecs(t) => {
                    let ecs = aws_sdk_ecs::Client::new(&config);
                    wait_for_task(&ecs, &t.cluster, &t.container, l, args.poll_interval).await?
                }
                Target::Batch(_) => {
                    let batch = aws_sdk_batch::Client::new(&config);
                    wait_for_job(&batch, l, args.poll_interval).await?
                }
            };
            let code = e
                .exit_code
                .map_or("no exit code".to_string(), |c| format!("exit code {c}"));
            eprintln!(
                "iiif-process-aws: {} stopped: {code}{}",
                e.arn,
                if e.description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", e.description)
                }
            );
            ended.push(e);
        }
        Ok::<_, TaskError>(Ok(ended))
    });
    drop(runtime);
    let ended = match ended {
        Ok(Ok(ended)) => ended,
        Ok(Err(launched)) => {
            let mut out = std::io::stdout().lock();
            for l in launched {
                if writeln!(out, "{}", l.arn).is_err() {
                    return ExitCode::from(1);
                }
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&e),
    };
    let Some(plan) = plan else {
        return ExitCode::SUCCESS;
    };
    let reports = read_reports(&plan, &settings, stores.sources.as_ref(), stores.reports());
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", to_pretty_json(&reports)).is_err() {
        return ExitCode::from(1);
    }
    ExitCode::from(exit_status(&ended, &reports))
}

/// The exit status from how the tasks ended and what they reported: a status of the task's own beyond 1 (the
/// run could not start, a signal) is passed on; then 1 when a source failed, its report is missing, or a task did
/// not succeed; else 0.
pub fn exit_status(ended: &[Ended], reports: &BTreeMap<String, SourceReport>) -> u8 {
    if let Some(code) = ended
        .iter()
        .filter_map(|e| e.exit_code)
        .filter(|c| !matches!(c, 0 | 1))
        .max()
    {
        return u8::try_from(code).unwrap_or(1).max(1);
    }
    let failed = reports.values().any(|r| !r.errors.is_empty());
    if failed || ended.iter().any(|e| !e.succeeded) {
        1
    } else {
        0
    }
}

/// Each planned source's report, read from where the task writes it (as the settings name it: beside the
/// derivatives or in the report bucket); a source without one gets an error for every label, as `iiif-process`
/// reports a source it could not process.
fn read_reports(
    plan: &Plan,
    settings: &Settings,
    sources: &dyn Store,
    reports: &dyn Store,
) -> BTreeMap<String, SourceReport> {
    let failed = |msg: String| {
        let mut r = SourceReport::default();
        for ins in &settings.instructions {
            r.errors.insert(ins.label.clone(), msg.clone());
        }
        r
    };
    plan.sources
        .iter()
        .map(|p: &PlannedSource| {
            let report = match &p.uri {
                Err(problem) => failed(problem.to_string()),
                Ok(uri) => match report_key(uri, settings, sources) {
                    Err(e) => failed(format!("cannot read source to find its report: {e}")),
                    Ok(key) => match reports.read(&key) {
                        Ok(bytes) => report::stored(&bytes, &p.given).unwrap_or_else(|| {
                            failed(format!(
                                "the file at {} is not this source's report",
                                reports.describe(&key)
                            ))
                        }),
                        // A listed file that is not an image is skipped by the task, and gets no report.
                        Err(StoreError::NotFound { .. }) if p.listed => SourceReport {
                            skipped: Some(format!(
                                "no report at {}: not processed (the task's log says why)",
                                reports.describe(&key)
                            )),
                            ..SourceReport::default()
                        },
                        Err(StoreError::NotFound { .. }) => failed(format!(
                            "no report at {} after the task stopped: the source was not processed \
                             (the task's log says why)",
                            reports.describe(&key)
                        )),
                        Err(e) => failed(format!("cannot read its report: {e}")),
                    },
                },
            };
            (p.given.clone(), report)
        })
        .collect()
}

/// Where the task writes `uri`'s report. idsecret names without a secret derive it from the source's bytes,
/// which are then read (as the task reads them); every other name is known without reading anything.
fn report_key(
    uri: &naming::SourceUri,
    settings: &Settings,
    sources: &dyn Store,
) -> Result<String, StoreError> {
    let fingerprint = match &uri.scheme {
        naming::Scheme::IdSecret { secret: None, .. } => {
            let bytes = sources.read(&uri.origin)?;
            iiif_process::naming::fingerprint(&bytes)
        }
        _ => String::new(),
    };
    // The launcher's own arguments always ask for a report.
    Ok(settings.report_key(uri, &fingerprint).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<TaskArgs, clap::Error> {
        TaskArgs::parse_from(
            std::iter::once("task")
                .chain(a.iter().copied())
                .map(Into::into)
                .collect(),
        )
    }

    const SETTINGS: [&str; 4] = ["-config", "s3://b/c.json", "-instructions", "s3://b/i.json"];

    #[test]
    fn go_style_flags_and_wait_false() {
        let a = args(
            &[
                &SETTINGS[..],
                &[
                    "-cluster",
                    "c",
                    "-task",
                    "t:3",
                    "-subnet",
                    "s1,s2",
                    "-security-group",
                    "g",
                    "-wait=false",
                    "-uri",
                    "a.jpg",
                    "b.jpg",
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert!(!a.wait);
        assert_eq!(a.subnets, ["s1", "s2"]);
        let l = a.launch().unwrap();
        assert_eq!(
            l.command,
            [
                "-config",
                "s3://b/c.json",
                "-instructions",
                "s3://b/i.json",
                "-report",
                "-report-name",
                "process.json",
                "-uri",
                "a.jpg",
                "-uri",
                "b.jpg"
            ]
        );
        // A bare -wait is true, and does not swallow the next flag.
        let a = args(&[&SETTINGS[..], &["-wait", "-cluster", "c", "-task", "t"]].concat()).unwrap();
        assert!(a.wait);
        assert_eq!(a.cluster.as_deref(), Some("c"));
    }

    #[test]
    fn batch_array_jobs_shard_and_ecs_tasks_do_not() {
        let a = args(
            &[
                &SETTINGS[..],
                &[
                    "-batch-queue",
                    "q",
                    "-batch-job-definition",
                    "d",
                    "-array-size",
                    "4",
                    "-shard",
                    "auto",
                    "-manifest",
                    "s3://b/m.txt",
                    "--",
                    "-skip-existing",
                ],
            ]
            .concat(),
        )
        .unwrap();
        let l = a.launch().unwrap();
        assert!(matches!(&l.target, Target::Batch(b) if b.array_size == Some(4)));
        assert!(l.command.ends_with(&[
            "-skip-existing".to_string(),
            "-shard".into(),
            "auto".into(),
            "-shard-count".into(),
            "4".into()
        ]));
        assert!(!l.local.contains(&"-shard".to_string()));
        // go-iiif v8's report name goes down instead of -report-name.
        let a = args(
            &[
                &SETTINGS[..],
                &[
                    "-cluster",
                    "c",
                    "-task",
                    "t",
                    "-report-template",
                    "r/{sha256_origin}.json",
                ],
            ]
            .concat(),
        )
        .unwrap();
        let l = a.launch().unwrap();
        assert!(l
            .command
            .windows(2)
            .any(|w| w == ["-report-template", "r/{sha256_origin}.json"]));
        assert!(!l.command.contains(&"-report-name".to_string()));
        for bad in [
            &[
                "-batch-queue",
                "q",
                "-batch-job-definition",
                "d",
                "-array-size",
                "4",
            ][..],
            &[
                "-batch-queue",
                "q",
                "-batch-job-definition",
                "d",
                "-shard",
                "auto",
            ],
            &[
                "-cluster",
                "c",
                "-task",
                "t",
                "-shard",
                "auto",
                "-array-size",
                "2",
            ],
            &["-cluster", "c", "-batch-queue", "q"],
            &["-cluster", "c"],
        ] {
            let e = args(&[&SETTINGS[..], bad].concat())
                .unwrap()
                .launch()
                .unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{bad:?}"
            );
        }
        assert!(args(&[&SETTINGS[..], &["-array-size", "1"]].concat()).is_err());
    }

    #[test]
    fn targets_from_the_lambda_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let t = Target::from_env(&env(&[
            ("IIIF_DISPATCH", "ecs"),
            ("IIIF_ECS_CLUSTER", "c"),
            ("IIIF_ECS_TASK_DEFINITION", "t"),
            ("IIIF_ECS_SUBNETS", "a, b"),
        ]))
        .unwrap();
        let Target::Ecs(e) = t else { panic!("{t:?}") };
        assert_eq!(e.subnets, ["a", "b"]);
        assert_eq!(
            (e.container.as_str(), e.launch_type.as_str()),
            ("iiif-process", "FARGATE")
        );
        assert_eq!(
            Target::from_env(&env(&[
                ("IIIF_DISPATCH", "batch"),
                ("IIIF_BATCH_JOB_QUEUE", "q")
            ])),
            Err(TargetError::Missing {
                kind: "batch",
                name: "IIIF_BATCH_JOB_DEFINITION"
            })
        );
        assert_eq!(
            Target::from_env(&env(&[("IIIF_DISPATCH", "k8s")])),
            Err(TargetError::Kind("k8s".into()))
        );
    }

    #[test]
    fn exit_status_as_iiif_process() {
        let ended = |code: Option<i32>, ok: bool| Ended {
            arn: "a".into(),
            exit_code: code,
            succeeded: ok,
            description: String::new(),
        };
        let mut reports = BTreeMap::new();
        reports.insert("a.jpg".to_string(), SourceReport::default());
        assert_eq!(exit_status(&[ended(Some(0), true)], &reports), 0);
        assert_eq!(exit_status(&[ended(None, false)], &reports), 1);
        assert_eq!(exit_status(&[ended(Some(2), false)], &reports), 2);
        assert_eq!(exit_status(&[ended(Some(143), false)], &reports), 143);
        let mut bad = SourceReport::default();
        bad.errors.insert("full".into(), "broken".into());
        reports.insert("b.jpg".to_string(), bad);
        assert_eq!(exit_status(&[ended(Some(0), true)], &reports), 1);
    }
}
