//! The README's table of exit codes, code by code: each test provokes one code through the
//! binary, as a user or a CI job would meet it. `every_code_of_the_readme_is_tested` keeps the
//! table, [`xtask::error::ExitCode`] and these tests in step.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use xtask::build::BuildOptions;
use xtask::plan::Variants;

use crate::common::engine::EngineStack;
use crate::common::registry::Registry;
use crate::common::{fixture_dir, Stack};

fn xtask(spec: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.arg("--spec").arg(spec).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn fixture_spec() -> std::path::PathBuf {
    fixture_dir().join("images/spec.yml")
}

#[track_caller]
fn assert_code(output: &Output, code: i32, says: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    assert!(stderr.contains(says), "expected `{says}` in:\n{stderr}");
}

#[test]
fn exit_0_success() {
    let output = xtask(&fixture_spec()).arg("plan").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn exit_1_output_that_cannot_be_written() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let output = xtask(&fixture_spec()).args(["graph", "--format", "dot"]).stdout(full).output().unwrap();
    assert_code(&output, 1, "writing the output");
}

#[test]
fn exit_2_command_line_not_understood() {
    let output = xtask(&fixture_spec()).args(["plan", "--no-such-flag"]).output().unwrap();
    assert_code(&output, 2, "--no-such-flag");
}

#[tokio::test]
async fn exit_2_a_ca_bundle_that_cannot_be_read() {
    let stack = EngineStack::new();
    let output =
        xtask(&stack.stack.spec_file()).args(["build", "--ca-bundle", "/no/such/bundle.pem"]).output().unwrap();
    assert_code(&output, 2, "cannot read the CA bundle /no/such/bundle.pem");
}

#[test]
fn exit_3_invalid_spec_or_unknown_image() {
    let stack = Stack::new();
    let unknown = xtask(&stack.spec_file()).args(["plan", "no-such-image"]).output().unwrap();
    assert_code(&unknown, 3, "no-such-image");
    stack.edit_spec("parent: base", "parent: nothing-like-it");
    let invalid = xtask(&stack.spec_file()).arg("plan").output().unwrap();
    assert_code(&invalid, 3, "nothing-like-it");
}

#[test]
fn exit_4_git_cannot_answer() {
    let stack = Stack::new();
    stack.git_init();
    let output = xtask(&stack.spec_file()).args(["plan", "--since", "no-such-branch"]).output().unwrap();
    assert_code(&output, 4, "unknown git reference `no-such-branch`");
}

#[tokio::test]
async fn exit_5_an_image_failed_to_build() {
    let stack = EngineStack::new();
    stack.stack.write("images/tools/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 3\n");
    let output = xtask(&stack.stack.spec_file()).arg("build").output().unwrap();
    assert_code(&output, 5, "did not build");
}

#[test]
fn exit_6_no_engine_answers() {
    let output =
        xtask(&fixture_spec()).arg("build").env("DOCKER_HOST", "unix:///no/such/docker.sock").output().unwrap();
    assert_code(&output, 6, "cannot reach the Docker engine at unix:///no/such/docker.sock");
}

#[tokio::test]
async fn exit_7_an_image_that_was_never_built() {
    let stack = EngineStack::new();
    let output = xtask(&stack.stack.spec_file()).args(["tag", "--branch", "main"]).output().unwrap();
    assert_code(&output, 7, "never built on this engine");
}

#[test]
fn exit_8_refused_on_purpose() {
    let output = xtask(&fixture_spec()).args(["tag", "--branch", "stable"]).output().unwrap();
    assert_code(&output, 8, "reserved");
}

#[tokio::test]
async fn exit_8_test_results_that_cannot_be_read() {
    let mut stack = EngineStack::new();
    stack.use_registry("127.0.0.1:9");
    stack.build(Variants::Default, BuildOptions::default()).await;
    let spec = stack.stack.spec_file();
    let tagged = xtask(&spec).args(["tag", "--branch", "main"]).output().unwrap();
    assert_code(&tagged, 0, "");
    let results = stack.stack.root().join("junit.xml");
    std::fs::write(&results, "<testsuites><testcase").unwrap();
    let output = xtask(&spec).args(["release", "--results"]).arg(&results).output().unwrap();
    assert_code(&output, 8, "cannot read the test results");
}

#[tokio::test]
async fn exit_9_a_push_the_registry_refuses() {
    let registry = Registry::start_read_only();
    let mut stack = EngineStack::new();
    stack.use_registry(&registry.host);
    stack.build(Variants::Default, BuildOptions::default()).await;
    let spec = stack.stack.spec_file();
    assert_code(&xtask(&spec).args(["tag", "--branch", "main"]).output().unwrap(), 0, "");
    let output = xtask(&spec).args(["release", "--untested"]).output().unwrap();
    assert_code(&output, 9, "pushing");
    let log = registry.access_log();
    assert!(!log.lines().any(|line| line.contains("PUT") && line.contains("/manifests/")), "a tag moved:\n{log}");
}

#[tokio::test]
async fn exit_10_stale_documentation() {
    let stack = EngineStack::new();
    stack.build(Variants::Default, BuildOptions::default()).await;
    let out = stack.stack.root().join("pages");
    let output = xtask(&stack.stack.spec_file()).args(["docs", "--check", "--out"]).arg(&out).output().unwrap();
    assert_code(&output, 10, "out of date");
}

#[test]
fn exit_11_an_image_without_a_signature_made_with_the_key() {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let registry = Registry::start(None);
    let client = xtask::registry::Registry::new(&registry.host, None);
    let config = client.push_blob("ns/unsigned", b"{}").unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[]}}"#
    );
    let manifest = xtask::registry::Manifest {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: xtask::registry::digest_of(manifest.as_bytes()),
        bytes: manifest.into_bytes(),
    };
    client.put_manifest("ns/unsigned", "1.0", &manifest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
    let public = dir.path().join("release.pub");
    std::fs::write(&public, key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap()).unwrap();
    let reference = format!("{}/ns/unsigned:1.0", registry.host);
    let output = xtask(&fixture_spec()).args(["verify", &reference, "--key"]).arg(&public).output().unwrap();
    assert_code(&output, 11, "has no signature");
}

#[tokio::test]
async fn exit_130_interrupted_by_sigterm() {
    let stack = EngineStack::new();
    stack.stack.write("images/tools/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 60\n");
    let child = xtask(&stack.stack.spec_file()).args(["build", "tools"]).env("CI", "1").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = stack.stack.root().join("target/xtask/logs/tools.log");
    while !std::fs::read_to_string(&log).is_ok_and(|text| text.contains("sleep 60")) {
        assert!(Instant::now() < deadline, "the build never reached its slow step");
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert_code(&output, 130, "interrupted");
    assert!(started.elapsed() < Duration::from_secs(30), "the build was not cancelled");
}

#[test]
fn every_code_of_the_readme_is_tested() {
    let readme = std::fs::read_to_string(xtask::paths::project_root().join("README.md")).unwrap();
    let table: Vec<u8> = readme
        .lines()
        .skip_while(|line| !line.starts_with("## Exit codes"))
        .filter_map(|line| line.strip_prefix("| ")?.split(' ').next()?.parse().ok())
        .collect();
    let codes: Vec<u8> = xtask::error::ExitCode::ALL.iter().map(|code| *code as u8).collect();
    assert_eq!(table, codes, "the README's exit-code table");
    let tests = include_str!("exit_codes.rs");
    for code in codes {
        assert!(tests.contains(&format!("fn exit_{code}_")), "no test for exit code {code}");
    }
}
