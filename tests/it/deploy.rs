//! The deployment examples and the Dockerfile stay valid for this binary.

use crate::common::*;
use std::path::Path;

fn parse(args: &[String]) -> iiif_process::cli::Args {
    let argv = std::iter::once("iiif-process".to_string()).chain(args.iter().cloned());
    iiif_process::cli::parse(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The value of `key = "value"` in `section` of Cargo.toml (the first table with that header). Cargo.toml is
/// simple enough here that a line reader does; no TOML parser is a dependency.
fn manifest_value(section: &str, key: &str) -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let mut lines = manifest.lines().map(str::trim);
    lines
        .find(|l| *l == section)
        .unwrap_or_else(|| panic!("no {section} in Cargo.toml"));
    lines
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in {section} of Cargo.toml"))
}

/// The Dockerfile's instructions, continuation lines joined and comments dropped, as (instruction, arguments).
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(line);
                let joined = std::mem::take(&mut pending);
                let (instr, args) = joined
                    .split_once(char::is_whitespace)
                    .unwrap_or((&joined, ""));
                out.push((instr.to_ascii_uppercase(), args.trim().to_string()));
            }
        }
    }
    out
}

/// Every command line of a deploy example: JSON `command` arrays anywhere in the document.
fn json_commands(v: &serde_json::Value, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "command" {
                    out.push(serde_json::from_value(v.clone()).unwrap());
                } else {
                    json_commands(v, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| json_commands(v, out)),
        _ => {}
    }
}

/// Every `args:` (or `command:`) block list of a YAML deploy example, item by item.
fn yaml_commands(text: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.trim(), "args:" | "command:"))
        .map(|(i, _)| {
            lines[i + 1..]
                .iter()
                .map_while(|l| l.trim().strip_prefix("- "))
                .map(|a| a.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn every_deploy_example_names_flags_the_binary_accepts() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("deploy")).unwrap() {
        let path = entry.unwrap().path();
        // deploy/aws/ holds a CloudFormation stack (cfn-lint checks it in CI), not a command line.
        if path.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let commands = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                let mut c = Vec::new();
                json_commands(&serde_json::from_str(&text).unwrap(), &mut c);
                c
            }
            Some("yaml" | "yml") => yaml_commands(&text),
            _ => continue,
        };
        assert!(!commands.is_empty(), "{}: no command found", path.display());
        for command in &commands {
            assert!(!command.is_empty(), "{}: an empty command", path.display());
            let args = parse(command);
            // A deployment names what to process: a manifest, an event or URIs.
            assert!(
                args.manifest.is_some()
                    || args.s3_event.is_some()
                    || !args.uri.is_empty()
                    || !args.uris.is_empty(),
                "{}: {command:?} processes nothing",
                path.display()
            );
        }
        seen += 1;
    }
    // The two examples the README describes, at least.
    assert!(seen >= 2, "{seen} deploy examples found");
}

#[test]
fn aws_batch_job_definition_is_a_valid_command() {
    let text =
        std::fs::read_to_string(root().join("deploy/aws-batch-job-definition.json")).unwrap();
    let def: serde_json::Value = serde_json::from_str(&text).unwrap();
    let command: Vec<String> =
        serde_json::from_value(def["containerProperties"]["command"].clone()).unwrap();
    let args = parse(&command);
    assert_eq!(args.shard.as_deref(), Some("auto"));
    // AWS Batch sets only the index, and refuses variables of its reserved AWS_BATCH prefix in a definition:
    // the array's size is on the command line.
    assert!(args.shard_count.is_some(), "{command:?}");
    let env = def["containerProperties"]["environment"]
        .as_array()
        .unwrap();
    for e in env {
        let name = e["name"].as_str().unwrap();
        assert!(!name.starts_with("AWS_BATCH"), "{name} is reserved");
    }
    // The sources are a prefix of the bucket, listed by each child: nothing baked into the image.
    assert!(
        !args.uri.is_empty() && args.manifest.is_none(),
        "{command:?}"
    );
    assert!(args
        .config
        .as_deref()
        .and_then(|c| c.to_str())
        .is_some_and(|c| c.starts_with("s3://")));
    // Exit 1 (bad masters, the rest done) and 2 (settings) are not retried; a crash or a lost host is.
    let rules = def["retryStrategy"]["evaluateOnExit"].as_array().unwrap();
    let action = |code: &str| {
        rules
            .iter()
            .find(|r| r["onExitCode"] == code)
            .map(|r| r["action"].as_str().unwrap().to_string())
    };
    assert_eq!(action("1").as_deref(), Some("EXIT"));
    assert_eq!(action("2").as_deref(), Some("EXIT"));
    assert!(def["retryStrategy"]["attempts"].as_u64().unwrap() > 1);
}

#[test]
fn kubernetes_indexed_job_is_a_valid_command_with_matching_count() {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes-indexed-job.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let commands = yaml_commands(&text);
    assert_eq!(commands.len(), 1, "{commands:?}");
    let parsed = parse(&commands[0]);
    assert_eq!(parsed.shard.as_deref(), Some("auto"));
    let completions: u64 = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("completions:"))
        .and_then(|v| v.split('#').next())
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    assert!(text.contains("completionMode: Indexed"));
    assert_eq!(parsed.shard_count, Some(completions));
    // backoffLimitPerIndex and FailIndex need Kubernetes 1.29, which the example says; exit 1 fails its index
    // without a retry, exit 2 the whole Job.
    assert!(text.contains("backoffLimitPerIndex:"));
    assert!(text.contains("Kubernetes 1.29 or later"));
    let policy = text
        .split("podFailurePolicy:")
        .nth(1)
        .expect("a podFailurePolicy");
    for (action, code) in [("FailIndex", "1"), ("FailJob", "2")] {
        let rule = policy
            .split("- action: ")
            .find(|r| r.starts_with(action))
            .unwrap_or_else(|| panic!("no {action} rule"));
        assert!(
            rule.contains(&format!("values: [{code}]")),
            "{action}: {rule}"
        );
    }
    // The alternative to a manifest: a prefix of the bucket, listed by each pod.
    let alternative = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix('#'))
        .find_map(|l| l.trim().strip_prefix("- -uri="))
        .expect("the -uri prefix alternative");
    let mut with_prefix: Vec<String> = commands[0]
        .iter()
        .filter(|a| !a.starts_with("-manifest"))
        .cloned()
        .collect();
    with_prefix.push(format!("-uri={alternative}"));
    assert_eq!(parse(&with_prefix).uri, [alternative]);
    // The files the command reads are in the mounted ConfigMap.
    let mount = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("mountPath:"))
        .map(str::trim)
        .unwrap();
    for file in [
        parsed.config.as_deref().unwrap(),
        parsed.instructions.as_deref().unwrap(),
        Path::new(parsed.manifest.as_deref().unwrap()),
    ] {
        assert!(
            file.starts_with(mount),
            "{} is not under {mount}",
            file.display()
        );
    }
}

#[test]
fn dockerfile_builds_this_package_and_runs_its_binary() {
    let bin = manifest_value("[[bin]]", "name");
    assert_eq!(bin, env!("CARGO_PKG_NAME"), "the binary the tests run");
    let instructions = dockerfile();
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(stages.len() >= 2, "a build stage and a run stage");
    let build = &instructions[stages[0]..stages[1]];
    // The run stage is the last: what a plain `docker build` makes.
    let run = &instructions[stages[stages.len() - 1]..];
    assert!(
        build[0].1.ends_with(" AS build"),
        "the first stage is `build`: {}",
        build[0].1
    );

    // The build stage copies only what exists, and with it everything cargo builds from.
    let workdir = build
        .iter()
        .rev()
        .find(|(i, _)| i == "WORKDIR")
        .map(|(_, a)| a.clone())
        .expect("a WORKDIR in the build stage");
    let mut copied = Vec::new();
    for (_, args) in build.iter().filter(|(i, _)| i == "COPY") {
        let parts: Vec<&str> = args.split_whitespace().collect();
        assert!(!parts[0].starts_with("--"), "COPY {args}");
        for src in &parts[..parts.len() - 1] {
            assert!(
                root().join(src).exists(),
                "COPY {args}: {src} is not in the repository"
            );
            copied.push(src.trim_end_matches('/').to_string());
        }
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("build ="),
        "a build script would have to be copied too"
    );
    for needed in [
        "Cargo.toml".to_string(),
        "Cargo.lock".to_string(),
        manifest_value("[lib]", "path"),
        manifest_value("[[bin]]", "path"),
    ] {
        assert!(
            copied
                .iter()
                .any(|c| Path::new(&needed).starts_with(Path::new(c))),
            "{needed} is not copied into the build stage ({copied:?})"
        );
    }
    // The build: locked, release, and (when named) this binary.
    let cargo = build
        .iter()
        .filter(|(i, _)| i == "RUN")
        .find(|(_, a)| a.contains("cargo build"))
        .map(|(_, a)| a.split_whitespace().collect::<Vec<_>>())
        .expect("a RUN cargo build in the build stage");
    assert!(
        cargo.contains(&"--release") && cargo.contains(&"--locked"),
        "{cargo:?}"
    );
    if let Some(i) = cargo.iter().position(|a| *a == "--bin") {
        assert_eq!(cargo[i + 1], bin);
    }
    // The default features build libjpeg-turbo, which needs cmake and nasm.
    if manifest_value("[features]", "default").contains("turbojpeg") {
        let installs = build
            .iter()
            .filter(|(i, _)| i == "RUN")
            .find(|(_, a)| a.contains("apt-get install"))
            .map(|(_, a)| a.split_whitespace().collect::<Vec<_>>())
            .expect("the build stage installs packages");
        assert!(
            installs.contains(&"cmake") && installs.contains(&"nasm"),
            "{installs:?}"
        );
    }

    // The run stage takes that binary from the build stage and runs it.
    let (_, from_build) = run
        .iter()
        .find(|(i, a)| i == "COPY" && a.starts_with("--from=build "))
        .expect("the run stage copies from the build stage");
    let parts: Vec<&str> = from_build.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "COPY {from_build}");
    assert_eq!(parts[1], format!("{workdir}/target/release/{bin}"));
    let installed = parts[2];
    assert_eq!(Path::new(installed).file_name().unwrap(), bin.as_str());
    let (_, entry) = run
        .iter()
        .find(|(i, _)| i == "ENTRYPOINT")
        .expect("an ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(entry).expect("ENTRYPOINT in exec form");
    assert_eq!(entry, [installed]);
}

/// The stages of the Dockerfile as (FROM arguments, instructions of the stage).
fn dockerfile_stages() -> Vec<(String, Vec<(String, String)>)> {
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (i, a) in dockerfile() {
        match (i.as_str(), stages.last_mut()) {
            ("FROM", _) => stages.push((a, Vec::new())),
            (_, Some((_, body))) => body.push((i, a)),
            (_, None) => {}
        }
    }
    stages
}

#[test]
fn dockerfile_names_base_images_in_full_for_podman() {
    let stages = dockerfile_stages();
    let mut names = Vec::new();
    for (from, _) in &stages {
        let mut words = from.split_whitespace();
        let image = words.next().unwrap();
        // podman, without docker's default registry, asks (or fails) for a short name.
        let registry = image.split('/').next().unwrap();
        assert!(
            names.iter().any(|n| n == image) || (image.contains('/') && registry.contains('.')),
            "FROM {from}: not a stage and no registry named"
        );
        if let (Some(as_), Some(name)) = (words.next(), words.next()) {
            assert!(as_.eq_ignore_ascii_case("as"), "FROM {from}");
            names.push(name.to_string());
        }
    }
}

#[test]
fn dockerfile_has_a_lambda_target_running_the_aws_binary() {
    let stages = dockerfile_stages();
    let (from, lambda) = stages
        .iter()
        .find(|(f, _)| f.ends_with(" AS lambda"))
        .expect("a `lambda` target");
    assert!(
        from.starts_with("public.ecr.aws/lambda/provided:al2023 "),
        "FROM {from}"
    );
    let (_, entry) = lambda
        .iter()
        .find(|(i, _)| i == "ENTRYPOINT")
        .expect("an ENTRYPOINT in the lambda stage");
    let entry: Vec<String> = serde_json::from_str(entry).expect("ENTRYPOINT in exec form");
    assert_eq!(entry[1..], ["lambda"]);
    // The binary comes from a stage that builds the AWS crate.
    let (_, copy) = lambda
        .iter()
        .find(|(i, a)| i == "COPY" && a.ends_with(&entry[0]))
        .expect("the lambda stage copies its entrypoint");
    let from_stage = copy
        .split_whitespace()
        .next()
        .and_then(|f| f.strip_prefix("--from="))
        .expect("COPY --from=<stage>");
    let builder = &stages
        .iter()
        .find(|(f, _)| f.ends_with(&format!(" AS {from_stage}")))
        .expect("the stage it copies from")
        .1;
    assert!(
        builder.iter().any(|(i, a)| i == "RUN"
            && a.contains("cargo build")
            && a.contains("-p iiif-process-aws")),
        "{builder:?}"
    );
    assert!(copy.contains("target/release/iiif-process-aws"), "{copy}");
    // Every workspace member is in the build context: cargo reads them all, even to build one.
    let build = &stages[0].1;
    assert!(
        build
            .iter()
            .any(|(i, a)| i == "COPY" && a.split_whitespace().next() == Some("crates")),
        "the build stage copies crates/"
    );
}

#[test]
fn readme_tells_bind_mount_users_to_run_as_themselves() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let runs: Vec<&str> = readme
        .lines()
        .filter(|l| l.contains("docker run") || l.contains("podman run"))
        .collect();
    assert!(!runs.is_empty());
    for l in runs.iter().filter(|l| l.contains(" -v ")) {
        assert!(l.contains("--user \"$(id -u):$(id -g)\""), "{l}");
    }
}
