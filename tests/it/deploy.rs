//! The deployment examples and the Dockerfile stay valid for this binary.

use crate::common::*;

fn parse(args: &[String]) -> iiif_process::cli::Args {
    let argv = std::iter::once("iiif-process".to_string()).chain(args.iter().cloned());
    iiif_process::cli::parse(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
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
    // AWS Batch sets only the index; the size is given in the environment of the definition.
    let env = def["containerProperties"]["environment"]
        .as_array()
        .unwrap();
    assert!(env.iter().any(|e| e["name"] == "AWS_BATCH_JOB_ARRAY_SIZE"));
}

#[test]
fn kubernetes_indexed_job_is_a_valid_command_with_matching_count() {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes-indexed-job.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim() == "args:").unwrap();
    let args: Vec<String> = lines[start + 1..]
        .iter()
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect();
    let parsed = parse(&args);
    assert_eq!(parsed.shard.as_deref(), Some("auto"));
    let completions: u64 = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("completions:"))
        .and_then(|v| v.split('#').next())
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    assert!(text.contains("completionMode: Indexed"));
    assert_eq!(parsed.shard_count, Some(completions));
}

#[test]
fn dockerfile_builds_with_the_locked_release_command_and_runs_the_binary() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(text.contains("RUN cargo build --release --locked"));
    assert!(text.contains("apt-get install -y --no-install-recommends cmake nasm"));
    assert!(text.contains(
        "COPY --from=build /src/target/release/iiif-process /usr/local/bin/iiif-process"
    ));
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/iiif-process"]"#));
    // What the build stage copies is all the build needs: the manifest, the lock file and src/.
    assert!(text.contains("COPY Cargo.toml Cargo.lock ./") && text.contains("COPY src ./src"));
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("build ="),
        "a build script would have to be copied too"
    );
}
