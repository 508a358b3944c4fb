//! `iiif-process-aws lambda` (go-iiif's `-mode lambda`): an AWS Lambda function for S3 uploads. Each invocation
//! carries S3 ObjectCreated events, directly or inside SQS, SNS or EventBridge envelopes; every created object
//! under the config's source is processed as `iiif-process -report` would process it, and the report is returned.
//!
//! Settings come from the environment once, at cold start: the config and instructions are read (from a file in
//! the image or a bucket) and checked before the first event, so a broken setting fails the function's start
//! instead of every invocation. The images themselves go through the core's stores, no AWS SDK.
//!
//! With `IIIF_DISPATCH=ecs|batch` the function processes nothing itself: it starts one ECS task or AWS Batch job
//! (see [`crate::task`]) for each invocation's created objects, as go-iiif-aws's function does, for masters too
//! big or too slow for a function.

use crate::task::{self, Target, TargetError, TaskError};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use iiif_process::plan::{Plan, PlanError};
use iiif_process::report::SourceReport;
use iiif_process::settings::{Settings, SettingsError};
use iiif_process::store::StoreError;
use iiif_process::{cli, run};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// go-iiif v8's default file names under `-config-source` and `-instructions-source`.
const DEFAULT_CONFIG_NAME: &str = "config.json";
const DEFAULT_INSTRUCTIONS_NAME: &str = "instructions.json";

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "no {what}: set {whole} (a file or a bucket URI, e.g. s3://bucket/{default}?region=us-east-1) or \
         {source_var} (a directory, file:// or bucket URI) with {name_var} (default {default})"
    )]
    Missing {
        what: &'static str,
        whole: &'static str,
        source_var: &'static str,
        name_var: &'static str,
        default: &'static str,
    },
    #[error("both {whole} and {source_var} are set: set one")]
    Both {
        whole: &'static str,
        source_var: &'static str,
    },
    #[error("{var} is not valid Unicode")]
    NotUnicode { var: String },
    #[error("the settings from the environment: {0}")]
    Args(clap::Error),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{var} is {problem}: the function runs in AWS Lambda, or under an emulator of its Runtime API that \
         sets AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION and \
         AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
    )]
    NotInLambda {
        var: &'static str,
        problem: &'static str,
    },
    #[error("cannot start the Lambda runtime's event loop: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Dispatch(#[from] TargetError),
}

/// Why an invocation failed: Lambda's error result (and, for asynchronous invocations, its retry).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error(transparent)]
    Event(#[from] PlanError),
    #[error("{failed} of {total} sources failed: {details}")]
    Failed {
        failed: usize,
        total: usize,
        details: String,
    },
    #[error("the invocation's worker thread stopped: {0}")]
    Worker(String),
    // The launcher's error is part of this message, not a separate cause (Lambda shows one message).
    #[error("cannot start a task for {sources}: {error}")]
    Dispatch { sources: String, error: TaskError },
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Diagnostic {
        let kind = match e {
            InvocationError::Event(_) => "BadEvent",
            InvocationError::Failed { .. } => "SourcesFailed",
            InvocationError::Worker(_) => "WorkerStopped",
            InvocationError::Dispatch { .. } => "DispatchFailed",
        };
        Diagnostic {
            error_type: format!("iiif-process.{kind}"),
            error_message: e.to_string(),
        }
    }
}

/// The config or instructions: `whole` (a file or object), or `source_var`'s directory or bucket with
/// `name_var`'s file name, as go-iiif v8's `-config-source`/`-config-name` name it.
struct SettingFile {
    what: &'static str,
    whole: &'static str,
    source_var: &'static str,
    name_var: &'static str,
    default: &'static str,
}

const CONFIG: SettingFile = SettingFile {
    what: "config",
    whole: "IIIF_CONFIG",
    source_var: "IIIF_CONFIG_SOURCE",
    name_var: "IIIF_CONFIG_NAME",
    default: DEFAULT_CONFIG_NAME,
};

const INSTRUCTIONS: SettingFile = SettingFile {
    what: "instructions",
    whole: "IIIF_INSTRUCTIONS",
    source_var: "IIIF_INSTRUCTIONS_SOURCE",
    name_var: "IIIF_INSTRUCTIONS_NAME",
    default: DEFAULT_INSTRUCTIONS_NAME,
};

type Env<'a> = &'a dyn Fn(&str) -> Result<Option<String>, InitError>;

impl SettingFile {
    /// Where the file is, from the environment.
    fn locate(&self, env: Env) -> Result<String, InitError> {
        let non_empty = |var: &str| Ok::<_, InitError>(env(var)?.filter(|v| !v.trim().is_empty()));
        match (non_empty(self.whole)?, non_empty(self.source_var)?) {
            (Some(_), Some(_)) => Err(InitError::Both {
                whole: self.whole,
                source_var: self.source_var,
            }),
            (Some(whole), None) => Ok(whole),
            (None, Some(source)) => {
                let name = non_empty(self.name_var)?.unwrap_or_else(|| self.default.to_string());
                Ok(join_source(&source, &name))
            }
            (None, None) => Err(InitError::Missing {
                what: self.what,
                whole: self.whole,
                source_var: self.source_var,
                name_var: self.name_var,
                default: self.default,
            }),
        }
    }
}

/// `name` inside the directory or bucket prefix `source`: `file:///etc/iiif` is a directory, as in go-iiif's
/// Go Cloud URIs; a bucket URI keeps its query (`s3://bucket/conf?region=…` -> `s3://bucket/conf/NAME?region=…`).
fn join_source(source: &str, name: &str) -> String {
    let source = source.strip_prefix("file://").unwrap_or(source);
    let (base, query) = match source.split_once("://") {
        Some(_) => source.split_once('?').unwrap_or((source, "")),
        None => (source, ""),
    };
    let joined = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        name.trim_start_matches('/')
    );
    if query.is_empty() {
        joined
    } else {
        format!("{joined}?{query}")
    }
}

/// The `iiif-process` arguments a dispatched task gets (without the program name): the config and instructions
/// the environment names, and `-report`, so that each source's report is written beside its derivatives as
/// `process.json`. The config and instructions must be where the task can read them too (a bucket, or a file in
/// both images).
fn args_from_env(env: Env) -> Result<Vec<String>, InitError> {
    Ok(vec![
        format!("--config={}", CONFIG.locate(env)?),
        format!("--instructions={}", INSTRUCTIONS.locate(env)?),
        "--report".into(),
    ])
}

/// The function's state between invocations: settings and stores, made once.
pub struct Function {
    settings: Settings,
    stores: run::Stores,
    /// `IIIF_DISPATCH`'s target, and the arguments each task starts with.
    dispatch: Option<(Target, Vec<String>)>,
}

/// Lambda ends a function with SIGKILL after its timeout; no signal stops a run part-way.
static NEVER_STOPPED: AtomicUsize = AtomicUsize::new(0);

impl Function {
    /// Settings from the process's environment; the config and instructions are read now.
    pub fn from_env() -> Result<Function, InitError> {
        // Checked here for a message that names every variable; the core then reads the same variables itself
        // (every iiif-process flag can be set as IIIF_<FLAG>, as in go-iiif's -mode lambda).
        let task_args = args_from_env(&process_env)?;
        let args = cli::parse(["iiif-process", "--report"]).map_err(InitError::Args)?;
        let settings = Settings::from_args(&args)?;
        let stores = run::Stores::open(&settings)?;
        let dispatch = match process_env("IIIF_DISPATCH")? {
            Some(v) if !v.trim().is_empty() => {
                Some((Target::from_env(&|k| std::env::var(k).ok())?, task_args))
            }
            _ => None,
        };
        Ok(Function {
            settings,
            stores,
            dispatch,
        })
    }

    /// `IIIF_DISPATCH`: one task for the invocation's created objects, started and not waited for. The answer
    /// names the task and its sources; from SQS, the messages that name no object go back to the queue.
    async fn dispatch(
        self: Arc<Self>,
        event: Value,
        target: &Target,
        base: &[String],
    ) -> Result<Value, InvocationError> {
        // Planning reads the source store, which blocks: off the event loop, as a run is.
        let planner = Arc::clone(&self);
        let planned = tokio::task::spawn_blocking(move || {
            let planned = planner.planned_event(&event);
            (event, planned)
        })
        .await
        .map_err(|e| InvocationError::Worker(e.to_string()))?;
        let (event, planned) = planned;
        let (given, unreadable) = planned?;
        let mut launched = Vec::new();
        if !given.is_empty() {
            let mut command = base.to_vec();
            for g in &given {
                command.push(format!("--uri={g}"));
            }
            launched = task::dispatch(target, command, None)
                .await
                .map_err(|error| InvocationError::Dispatch {
                    sources: given.join(", "),
                    error,
                })?;
            for l in &launched {
                eprintln!("started {} for {}", l.arn, given.join(", "));
            }
        }
        let mut answer = serde_json::json!({
            "dispatched": launched.iter().map(|l| l.arn.clone()).collect::<Vec<_>>(),
            "sources": given,
        });
        if sqs_batch(&event).is_some() {
            let mut response = SqsBatchResponse::default();
            response.batch_item_failures = unreadable
                .into_iter()
                .map(|id| {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = id;
                    f
                })
                .collect();
            if let (Value::Object(a), Ok(Value::Object(r))) =
                (&mut answer, serde_json::to_value(&response))
            {
                a.extend(r);
            }
        }
        Ok(answer)
    }

    /// The sources an event creates, and the SQS messages (by ID) that name none that can be read.
    fn planned_event(&self, event: &Value) -> Result<(Vec<String>, Vec<String>), PlanError> {
        let Some(batch) = sqs_batch(event) else {
            return Ok((self.planned(&event.to_string(), "event")?, Vec::new()));
        };
        let mut given = Vec::new();
        let mut unreadable = Vec::new();
        for record in batch.records {
            let id = record.message_id.unwrap_or_default();
            let body = record.body.unwrap_or_default();
            match self.planned(&body, &format!("SQS message {id}")) {
                Ok(names) => {
                    for n in names {
                        if !given.contains(&n) {
                            given.push(n);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    unreadable.push(id);
                }
            }
        }
        Ok((given, unreadable))
    }

    /// The names of the sources an event's text creates (each once, in order), planned as a run plans them.
    fn planned(&self, text: &str, name: &str) -> Result<Vec<String>, PlanError> {
        let plan = Plan::from_event(text, name, &self.settings, self.stores.sources.as_ref())?;
        for n in &plan.notices {
            eprintln!("{n}");
        }
        let mut seen = HashSet::new();
        Ok(plan
            .sources
            .into_iter()
            .map(|s| s.given)
            .filter(|g| seen.insert(g.clone()))
            .collect())
    }

    /// One invocation: an SQS batch answers with the messages to retry; any other event succeeds with the report
    /// or fails as a whole.
    pub fn handle(&self, event: &Value) -> Result<Value, InvocationError> {
        match sqs_batch(event) {
            Some(batch) => Ok(self.handle_sqs(batch)),
            None => self.handle_one(event),
        }
    }

    fn handle_one(&self, event: &Value) -> Result<Value, InvocationError> {
        let plan = Plan::from_event(
            &event.to_string(),
            "event",
            &self.settings,
            self.stores.sources.as_ref(),
        )?;
        let outcome = self.run(&plan);
        let failed: Vec<String> = outcome
            .reports
            .iter()
            .filter(|(_, r)| !r.errors.is_empty())
            .map(|(given, r)| describe_failure(given, r))
            .collect();
        if failed.is_empty() {
            Ok(report_value(&outcome.reports))
        } else {
            Err(InvocationError::Failed {
                failed: failed.len(),
                total: outcome.reports.len(),
                details: failed.join("; "),
            })
        }
    }

    /// The sources of every message are run together (in parallel, each once), then each message is judged by
    /// its own sources: a message is retried when its event is unreadable or one of its sources failed.
    fn handle_sqs(&self, batch: SqsEvent) -> Value {
        let mut combined = Plan::default();
        let mut seen = HashSet::new();
        let mut messages: Vec<(String, Option<Vec<String>>)> = Vec::new();
        for record in batch.records {
            let id = record.message_id.unwrap_or_default();
            let body = record.body.unwrap_or_default();
            match Plan::from_event(
                &body,
                &format!("SQS message {id}"),
                &self.settings,
                self.stores.sources.as_ref(),
            ) {
                Ok(plan) => {
                    let given = plan.sources.iter().map(|s| s.given.clone()).collect();
                    combined.notices.extend(plan.notices);
                    combined.sources.extend(
                        plan.sources
                            .into_iter()
                            .filter(|s| seen.insert(s.given.clone())),
                    );
                    messages.push((id, Some(given)));
                }
                Err(e) => {
                    eprintln!("{e}");
                    messages.push((id, None));
                }
            }
        }
        let outcome = self.run(&combined);
        let failures = messages
            .into_iter()
            .filter(|(_, given)| match given {
                None => true,
                Some(given) => given
                    .iter()
                    .any(|g| outcome.reports.get(g).is_none_or(|r| !r.errors.is_empty())),
            })
            .map(|(id, _)| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        let mut value =
            serde_json::to_value(&response).unwrap_or_else(|_| Value::Object(Default::default()));
        // Lambda reads batchItemFailures alone; the report rides along for whoever invoked the function by hand.
        if let Value::Object(map) = &mut value {
            map.insert("report".into(), report_value(&outcome.reports));
        }
        value
    }

    fn run(&self, plan: &Plan) -> run::RunOutcome {
        run::run(
            &self.settings,
            plan,
            self.stores.sources.as_ref(),
            self.stores.derivatives.as_ref(),
            self.stores.reports.as_deref(),
            &NEVER_STOPPED,
            &|_, _| {},
        )
    }
}

/// The records of an SQS batch, when `event` is one (every record from `aws:sqs`).
fn sqs_batch(event: &Value) -> Option<SqsEvent> {
    let records = event.get("Records")?.as_array()?;
    let from_sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    if records.is_empty() || !records.iter().all(from_sqs) {
        return None;
    }
    serde_json::from_value(event.clone()).ok()
}

fn describe_failure(given: &str, report: &SourceReport) -> String {
    let errors: Vec<String> = report
        .errors
        .iter()
        .map(|(label, msg)| format!("{label}: {msg}"))
        .collect();
    format!("{given}: {}", errors.join(", "))
}

/// The report as `iiif-process` prints it (keys sorted at every level).
fn report_value(reports: &BTreeMap<String, SourceReport>) -> Value {
    serde_json::from_str(&iiif_process::report::to_pretty_json(reports)).unwrap_or(Value::Null)
}

/// The variables Lambda sets that the runtime client reads (and would panic without).
fn check_lambda_env(env: Env) -> Result<(), InitError> {
    for var in [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ] {
        match env(var)? {
            None => {
                return Err(InitError::NotInLambda {
                    var,
                    problem: "not set",
                })
            }
            Some(v) if var.ends_with("MEMORY_SIZE") && v.parse::<i32>().is_err() => {
                return Err(InitError::NotInLambda {
                    var,
                    problem: "not a number",
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn process_env(var: &str) -> Result<Option<String>, InitError> {
    match std::env::var(var) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(InitError::NotUnicode { var: var.into() }),
    }
}

/// Serve invocations from the Lambda Runtime API until the process is ended.
pub fn main() -> ExitCode {
    if let Err(e) = check_lambda_env(&process_env) {
        eprintln!("iiif-process-aws lambda: {e}");
        return ExitCode::from(2);
    }
    let function = match Function::from_env() {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("iiif-process-aws lambda: {e}");
            return ExitCode::from(2);
        }
    };
    // The runtime's client needs one thread; the work runs on the core's own threads (run loop, rayon, storage
    // I/O), off the event loop, since the core blocks.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iiif-process-aws lambda: {}", InitError::Runtime(e));
            return ExitCode::from(2);
        }
    };
    let served = rt.block_on(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| {
            let function = Arc::clone(&function);
            async move {
                if let Some((target, base)) = &function.dispatch {
                    let (target, base) = (target.clone(), base.clone());
                    return function.dispatch(event.payload, &target, &base).await;
                }
                tokio::task::spawn_blocking(move || function.handle(&event.payload))
                    .await
                    .map_err(|e| InvocationError::Worker(e.to_string()))?
            }
        },
    )));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iiif-process-aws lambda: the Lambda Runtime API: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(
        vars: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Result<Option<String>, InitError> + 'a {
        move |k| {
            Ok(vars
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string()))
        }
    }

    #[test]
    fn sources_and_names_join_as_go_iiif_v8_joins_them() {
        assert_eq!(
            join_source("file:///etc/iiif/", "config.json"),
            "/etc/iiif/config.json"
        );
        assert_eq!(join_source("/etc/iiif", "c.json"), "/etc/iiif/c.json");
        assert_eq!(
            join_source("s3://settings?region=us-east-1", "config.json"),
            "s3://settings/config.json?region=us-east-1"
        );
        assert_eq!(
            join_source("s3://settings/iiif/", "i.json"),
            "s3://settings/iiif/i.json"
        );
    }

    #[test]
    fn settings_come_from_either_form_and_never_both() {
        let env = env_of(&[
            ("IIIF_CONFIG_SOURCE", "s3://settings?region=eu-west-1"),
            ("IIIF_INSTRUCTIONS", "/var/task/instructions.json"),
        ]);
        assert_eq!(
            args_from_env(&env).unwrap(),
            [
                "--config=s3://settings/config.json?region=eu-west-1",
                "--instructions=/var/task/instructions.json",
                "--report"
            ]
        );
        let env = env_of(&[
            ("IIIF_CONFIG", "/var/task/config.json"),
            ("IIIF_INSTRUCTIONS_SOURCE", "file:///opt/iiif"),
            ("IIIF_INSTRUCTIONS_NAME", "sfomuseum.json"),
        ]);
        assert_eq!(
            args_from_env(&env).unwrap()[1],
            "--instructions=/opt/iiif/sfomuseum.json"
        );
        let env = env_of(&[("IIIF_CONFIG", "a"), ("IIIF_CONFIG_SOURCE", "b")]);
        let e = args_from_env(&env).unwrap_err().to_string();
        assert!(e.contains("IIIF_CONFIG and IIIF_CONFIG_SOURCE"), "{e}");
        let env = env_of(&[("IIIF_CONFIG", "a")]);
        let e = args_from_env(&env).unwrap_err().to_string();
        assert!(
            e.contains("no instructions") && e.contains("IIIF_INSTRUCTIONS_SOURCE"),
            "{e}"
        );
    }

    #[test]
    fn an_error_result_says_its_cause_once() {
        let e = InvocationError::Dispatch {
            sources: "a.jpg".into(),
            error: TaskError::NotStarted {
                reasons: "RESOURCE:MEMORY".into(),
            },
        };
        let d = Diagnostic::from(e);
        assert_eq!(d.error_type, "iiif-process.DispatchFailed");
        assert_eq!(
            d.error_message,
            "cannot start a task for a.jpg: ECS RunTask started no task: RESOURCE:MEMORY"
        );
    }

    #[test]
    fn only_sqs_records_are_an_sqs_batch() {
        let sqs = serde_json::json!({"Records": [{"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"}]});
        let batch = sqs_batch(&sqs).unwrap();
        assert_eq!(batch.records[0].message_id.as_deref(), Some("m1"));
        let s3 = serde_json::json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]});
        assert!(sqs_batch(&s3).is_none());
        let sns =
            serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]});
        assert!(sqs_batch(&sns).is_none());
        assert!(sqs_batch(&serde_json::json!({"Records": []})).is_none());
    }
}
