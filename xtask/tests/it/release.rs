//! `cargo xtask tag` and `release` as users run them, against the real engine and a real
//! registry with authentication (Debian's `docker-registry`, started by each test): version
//! tags computed inside images, only what passed pushed, pulled back by digest, refused
//! credentials, a push killed midway and run again, and promotion that keeps the digest.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::engine::{remove_namespace, EngineStack};
use crate::common::registry::Registry;
use tempfile::TempDir;
use xtask::build::BuildOptions;
use xtask::credentials::Credentials;
use xtask::engine::{Engine, PROBE_LABEL};
use xtask::plan::Variants;
use xtask::registry::Registry as Client;
use xtask::release::ReleaseRecord;
use xtask::scheduler::Outcome;
use xtask::tags::TagRecord;

const USER: &str = "ci";
pub(crate) const PASSWORD: &str = "s3cret-pa55";
const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// A fixture stack published to a registry with authentication, with version tags: `python`
/// on `base` (inherited by `app` and `extra`) and `lab` on `app`.
pub(crate) struct Release {
    pub(crate) stack: EngineStack,
    pub(crate) registry: Registry,
    docker_config: TempDir,
    pids: Vec<u32>,
}

impl Release {
    pub(crate) fn new() -> Release {
        let registry = Registry::start(Some((USER, PASSWORD)));
        let mut stack = EngineStack::new();
        stack.use_registry(&registry.host);
        let files = &stack.stack;
        files.edit_spec(
            "doc_commands:\n  os-release: cat /etc/os-release\n",
            "doc_commands:\n  os-release: cat /etc/os-release\nversion_tags:\n  python: cat /python-version\n  lab: echo 4.2.5\n",
        );
        files.edit_spec(
            "    doc_commands: [os-release]\n",
            "    doc_commands: [os-release]\n    version_tags: [python]\n",
        );
        files.edit_spec("    depends_on: [tools]\n", "    depends_on: [tools]\n    version_tags: [lab]\n");
        files.write(
            "images/base/Dockerfile",
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo base > /base.txt && echo 3.11.2 > /python-version\n",
        );
        Release { stack, registry, docker_config: tempfile::tempdir().unwrap(), pids: vec![] }
    }

    pub(crate) async fn build(&self, variants: Variants) {
        let options = BuildOptions { revision: Some(REVISION.into()), ..Default::default() };
        let report = self.stack.build(variants, options).await;
        assert!(report.rows.iter().all(|row| matches!(row.outcome, Outcome::Done(_))), "{report:?}");
    }

    pub(crate) fn command(&self, args: &[&str], password: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .arg("--spec")
            .arg(self.stack.stack.spec_file())
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env("STACK_REGISTRY_USERNAME", USER)
            .env("STACK_REGISTRY_PASSWORD", password)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    pub(crate) fn run_as(&mut self, args: &[&str], password: &str) -> Output {
        let child = self.command(args, password).spawn().unwrap();
        self.pids.push(child.id());
        child.wait_with_output().unwrap()
    }

    pub(crate) fn run(&mut self, args: &[&str]) -> Output {
        self.run_as(args, PASSWORD)
    }

    pub(crate) fn work(&self, file: &str) -> PathBuf {
        self.stack.stack.root().join("target/xtask").join(file)
    }

    pub(crate) fn tag_record(&self) -> TagRecord {
        serde_json::from_str(&std::fs::read_to_string(self.work("tags.json")).unwrap()).unwrap()
    }

    pub(crate) fn release_record(&self) -> ReleaseRecord {
        serde_json::from_str(&std::fs::read_to_string(self.work("release.json")).unwrap()).unwrap()
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(&self.registry.host, Some(Credentials::new(&self.registry.host, USER, PASSWORD, "test")))
    }

    /// The repository path of `name` under the registry.
    pub(crate) fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.stack.namespace)
    }

    /// The digest `name:tag` has in the registry.
    pub(crate) fn digest(&self, name: &str, tag: &str) -> Option<String> {
        self.client().manifest(&self.path(name), tag).unwrap().map(|m| m.digest)
    }

    /// Every blob the manifest `name:tag` names is stored: the tag names a complete image.
    pub(crate) fn complete(&self, name: &str, tag: &str) -> bool {
        let client = self.client();
        let manifest = client.manifest(&self.path(name), tag).unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
        let mut blobs = vec![json["config"]["digest"].as_str().unwrap().to_string()];
        for layer in json["layers"].as_array().unwrap() {
            blobs.push(layer["digest"].as_str().unwrap().to_string());
        }
        blobs.iter().all(|blob| client.has_blob(&self.path(name), blob).unwrap())
    }
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn succeeded(output: &Output) {
    assert!(output.status.success(), "stdout:\n{}\nstderr:\n{}", stdout(output), stderr(output));
}

fn tags_of<'a>(record: &'a TagRecord, node: &str) -> &'a [String] {
    &record.images.iter().find(|image| image.node == node).unwrap_or_else(|| panic!("{node}: {record:?}")).tags
}

#[tokio::test]
async fn tag_gives_build_tags_and_version_tags_computed_inside_each_image() {
    let mut release = Release::new();
    let never = release.run(&["tag", "--branch", "main"]);
    assert_eq!(never.status.code(), Some(7), "{}", stderr(&never));
    assert!(stderr(&never).contains("`cargo xtask build base tools app extra`"), "{}", stderr(&never));

    release.build(Variants::All).await;
    let reserved = release.run(&["tag", "--branch", "stable"]);
    assert_eq!(reserved.status.code(), Some(8), "{}", stderr(&reserved));
    assert!(stderr(&reserved).contains("`1.0-stable`, which is reserved"), "{}", stderr(&reserved));

    let dry = release.run(&["tag", "--all-variants", "--branch", "try", "--dry-run"]);
    succeeded(&dry);
    assert!(stdout(&dry).contains("python-3.11.2"), "{}", stdout(&dry));
    let engine = Engine::connect().await.unwrap();
    let base_repo = release.stack.repository("base");
    assert!(engine.image(&format!("{base_repo}:1.0-try")).await.unwrap().is_none(), "a dry run moved a tag");

    succeeded(&release.run(&["tag", "--all-variants", "--branch", "feature/GPU"]));
    let record = release.tag_record();
    let date = |tags: &[String]| tags[2].clone();
    let base = tags_of(&record, "base");
    assert_eq!(&base[..2], ["1.0-feature-gpu", "0123456789ab"]);
    assert!(date(base).starts_with("20") && date(base).len() == 10, "{base:?}");
    assert_eq!(&base[3..], ["python-3.11.2"]);
    assert_eq!(&tags_of(&record, "app")[3..], ["python-3.11.2", "lab-4.2.5"], "app inherits python");
    assert_eq!(&tags_of(&record, "extra")[3..], ["python-3.11.2", "lab-4.2.5"], "and so does extra");
    assert_eq!(tags_of(&record, "tools").len(), 3, "tools is not built on base: no version tag");
    assert_eq!(&tags_of(&record, "app@gpu")[3..], ["python-3.11.2", "lab-4.2.5"]);
    let app_gpu = record.images.iter().find(|image| image.node == "app@gpu").unwrap();
    assert_eq!(app_gpu.repository, release.stack.repository("app-gpu"), "variants live in their own repository");
    for image in &record.images {
        for tag in &image.tags {
            let found = engine.image(&format!("{}:{tag}", image.repository)).await.unwrap().unwrap();
            assert_eq!(found.id.as_deref(), Some(image.id.as_str()), "{}:{tag}", image.repository);
        }
    }

    // A version command that fails: that image is not tagged, the others are, the run says so.
    release.stack.stack.edit_spec("lab: echo 4.2.5", "lab: echo broken >&2; exit 3");
    let failed = release.run(&["tag", "--branch", "again"]);
    assert_eq!(failed.status.code(), Some(8));
    assert!(
        stderr(&failed).contains("app: version tag `lab`: `echo broken >&2; exit 3` exited with 3: broken"),
        "{}",
        stderr(&failed)
    );
    assert!(engine.image(&format!("{base_repo}:1.0-again")).await.unwrap().is_some());
    assert!(engine.image(&format!("{}:1.0-again", release.stack.repository("app"))).await.unwrap().is_none());

    // Every container the runs started to compute versions is gone.
    for id in engine.containers_labelled(PROBE_LABEL).await.unwrap() {
        let owner = engine.container_label(&id, PROBE_LABEL).await.unwrap().unwrap_or_default();
        assert!(!release.pids.iter().any(|pid| pid.to_string() == owner), "container {id} was left behind");
    }
}

const JUNIT_TOOLS_FAILED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="images" tests="4" failures="1" skipped="0">
  <testsuite name="base" tests="1" failures="0" skipped="0" time="0.1">
    <testcase classname="base" name="base::common/common::shell" time="0.010"/>
  </testsuite>
  <testsuite name="tools" tests="1" failures="1" skipped="0" time="0.1">
    <testcase classname="tools" name="tools::tools/checks::version" time="0.010">
      <failure message="exit 1">exit 1</failure>
    </testcase>
  </testsuite>
  <testsuite name="app" tests="1" failures="0" skipped="0" time="0.1">
    <testcase classname="app" name="app::common/common::shell" time="0.010"/>
  </testsuite>
  <testsuite name="extra" tests="1" failures="0" skipped="0" time="0.1">
    <testcase classname="extra" name="extra::common/common::shell" time="0.010"/>
  </testsuite>
</testsuites>
"#;

#[tokio::test]
async fn release_pushes_only_what_passed_and_it_pulls_back_by_digest() {
    let mut release = Release::new();
    release.build(Variants::Default).await;
    succeeded(&release.run(&["tag", "--branch", "main"]));
    let tagged = release.tag_record();
    let results = release.stack.stack.root().join("junit.xml");
    std::fs::write(&results, JUNIT_TOOLS_FAILED).unwrap();
    let results = results.to_str().unwrap().to_string();

    let untested = release.run(&["release"]);
    assert_eq!(untested.status.code(), Some(8));
    assert!(stderr(&untested).contains("--results <junit.xml>"), "{}", stderr(&untested));
    let strict = release.run(&["release", "--results", &results, "--all-or-nothing"]);
    assert_eq!(strict.status.code(), Some(8), "{}", stderr(&strict));
    let dry = release.run(&["release", "--results", &results, "--dry-run"]);
    succeeded(&dry);
    let base_pin = &tagged.images[0].pin;
    assert!(stdout(&dry).contains(&format!("base: would push {}:{base_pin}", release.stack.repository("base"))));
    assert_eq!(release.digest("base", base_pin), None, "neither --all-or-nothing nor --dry-run pushed anything");

    let output = release.run(&["release", "--results", &results]);
    succeeded(&output);
    let record = release.release_record();
    let status: Vec<(&str, &str)> = record.images.iter().map(|i| (i.node.as_str(), i.status.as_str())).collect();
    assert_eq!(status, [("base", "pushed"), ("tools", "held"), ("app", "held"), ("extra", "held")]);
    assert_eq!(record.images[1].reason.as_deref(), Some("1 test failed"));
    assert_eq!(record.images[2].reason.as_deref(), Some("built on tools, whose tests failed"));
    let base = &record.images[0];
    let digest = base.digest.clone().unwrap();
    for tag in &base.tags {
        assert_eq!(release.digest("base", tag).as_deref(), Some(digest.as_str()), "base:{tag}");
    }
    assert!(base.tags.contains(&"python-3.11.2".to_string()) && base.tags.contains(&"1.0-main".to_string()));
    for name in ["tools", "app", "extra"] {
        assert_eq!(release.digest(name, "1.0-main"), None, "{name} was pushed although held");
    }
    assert!(!stdout(&output).contains(PASSWORD) && !stderr(&output).contains(PASSWORD), "a secret was printed");

    // Pull it back by digest on an engine that no longer has it: the very image that was tagged.
    let engine = Engine::connect().await.unwrap();
    let reference = format!("{}@{digest}", base.repository);
    remove_namespace(&engine, &release.registry.host, &release.stack.namespace).await;
    let credentials = Credentials::new(&release.registry.host, USER, PASSWORD, "test");
    engine.pull(&reference, Some(&credentials), None).await.unwrap();
    let pulled = engine.image(&reference).await.unwrap().unwrap();
    assert_eq!(pulled.id.as_deref(), Some(tagged.images[0].id.as_str()));
}

#[tokio::test]
async fn refused_credentials_push_nothing_and_print_no_secret() {
    let mut release = Release::new();
    release.build(Variants::Default).await;
    succeeded(&release.run(&["tag", "--branch", "main"]));
    let output = release.run_as(&["release", "--untested"], "wrong-password");
    assert_eq!(output.status.code(), Some(9), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains(&format!("the registry {} refused the credentials of `ci`", release.registry.host)),
        "{text}"
    );
    assert!(text.contains("nothing was pushed"), "{text}");
    assert!(!text.contains("wrong-password") && !stdout(&output).contains("wrong-password"), "{text}");
    let pin = release.tag_record().images[0].pin.clone();
    assert_eq!(release.digest("base", &pin), None);
}

#[tokio::test]
async fn a_release_killed_midway_moves_no_tag_and_a_rerun_completes_without_uploading_again() {
    let mut release = Release::new();
    // base is pushed first and is small; tools has a layer big enough that its push is still
    // uploading when the release is killed.
    release.stack.stack.write(
        "images/tools/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo tools > /tools.txt && head -c 150000000 /dev/urandom > /big\n",
    );
    release.build(Variants::Default).await;
    succeeded(&release.run(&["tag", "--branch", "main"]));
    let mut child = release.command(&["release", "--untested"], PASSWORD).spawn().unwrap();
    let uploads = release.registry.repositories().join(&release.stack.namespace).join("tools/_uploads");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_dir(&uploads).is_ok_and(|mut entries| entries.next().is_some()) {
        assert!(Instant::now() < deadline, "no upload started");
        assert!(child.try_wait().unwrap().is_none(), "the release ended before it was killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let record = release.tag_record();
    for image in &record.images {
        let name = image.repository.rsplit('/').next().unwrap();
        for tag in &image.tags {
            assert_eq!(release.digest(name, tag), None, "{name}:{tag} was moved by a release that did not finish");
        }
    }
    let base_pin = &record.images[0].pin;
    assert!(release.complete("base", base_pin), "base was pushed completely before tools started");

    let before = release.registry.access_log().len();
    let output = release.run(&["release", "--untested"]);
    succeeded(&output);
    let rerun = release.registry.access_log()[before..].to_string();
    let ns = &release.stack.namespace;
    // The engine uploads an image's layers in PATCH chunks; the release's own attachments
    // (small documents, uploaded whole by one PUT) never PATCH.
    let uploads_to = |name: &str| {
        rerun.lines().filter(|line| line.contains(&format!("\"PATCH /v2/{ns}/{name}/blobs/uploads/"))).count()
    };
    assert_eq!(uploads_to("base"), 0, "base's blobs were uploaded again:\n{rerun}");
    assert!(uploads_to("tools") > 0, "tools' big layer had to be uploaded again:\n{rerun}");
    for image in &release.release_record().images {
        let name = image.repository.rsplit('/').next().unwrap();
        for tag in &image.tags {
            assert_eq!(release.digest(name, tag), image.digest, "{name}:{tag}");
            assert!(release.complete(name, tag), "{name}:{tag} names blobs the registry lacks");
        }
    }
}

#[tokio::test]
async fn promotion_retags_in_the_registry_with_the_same_digest() {
    let mut release = Release::new();
    release.build(Variants::All).await;
    succeeded(&release.run(&["tag", "--all-variants", "--branch", "main"]));
    succeeded(&release.run(&["release", "--untested"]));
    let pushed = release.release_record();
    assert_eq!(pushed.images.len(), 7);

    let dry = release.run(&["release", "--promote", "1.0-main", "--to", "stable", "--dry-run"]);
    succeeded(&dry);
    assert!(stdout(&dry).contains("(would move)"), "{}", stdout(&dry));
    assert_eq!(release.digest("base", "stable"), None, "a dry run moved a tag");

    // `python-3.11.2` exists on base, app and extra only: refused, nothing moved.
    let partial = release.run(&["release", "--promote", "python-3.11.2", "--to", "stable"]);
    assert_eq!(partial.status.code(), Some(8));
    assert!(stderr(&partial).contains("lack it in"), "{}", stderr(&partial));
    assert!(stderr(&partial).contains("tools, tools@gpu"), "{}", stderr(&partial));
    assert_eq!(release.digest("base", "stable"), None);

    succeeded(&release.run(&["release", "--promote", "1.0-main", "--to", "stable"]));
    for image in &pushed.images {
        let name = image.repository.rsplit('/').next().unwrap();
        assert_eq!(release.digest(name, "stable"), image.digest, "{name}:stable");
    }
    let promoted = release.release_record();
    assert!(promoted.promotions.iter().all(|p| p.status == "moved"), "{promoted:?}");

    // A new build of base moves `1.0-main`; `stable` still names the old one, so promoting
    // again is refused unless forced.
    release.stack.stack.write("images/base/data.txt", "changed\n");
    release.build(Variants::All).await;
    succeeded(&release.run(&["tag", "--all-variants", "--branch", "main"]));
    succeeded(&release.run(&["release", "--untested"]));
    let old = release.digest("base", "stable");
    let taken = release.run(&["release", "--promote", "1.0-main", "--to", "stable"]);
    assert_eq!(taken.status.code(), Some(8));
    assert!(stderr(&taken).contains("`stable` already names other images"), "{}", stderr(&taken));
    assert_eq!(release.digest("base", "stable"), old);
    succeeded(&release.run(&["release", "--promote", "1.0-main", "--to", "stable", "--force"]));
    assert_eq!(release.digest("base", "stable"), release.digest("base", "1.0-main"));
    assert_ne!(release.digest("base", "stable"), old);
    assert_eq!(release.digest("tools", "stable"), release.digest("tools", "1.0-main"), "unchanged images stay");
}

#[tokio::test]
async fn a_registry_that_goes_away_mid_push_is_retried_and_the_release_completes() {
    let mut release = Release::new();
    release.stack.stack.write(
        "images/base/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo 3.11.2 > /python-version && head -c 150000000 /dev/urandom > /big\n",
    );
    release.build(Variants::Default).await;
    succeeded(&release.run(&["tag", "--branch", "main"]));
    let started = Instant::now();
    let mut child = release.command(&["release", "--untested"], PASSWORD).spawn().unwrap();
    let uploads = release.registry.repositories().join(&release.stack.namespace).join("base/_uploads");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_dir(&uploads).is_ok_and(|mut entries| entries.next().is_some()) {
        assert!(Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    release.registry.kill();
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "the release gave up at once");
    release.registry.restart();
    let output = child.wait_with_output().unwrap();
    succeeded(&output);
    eprintln!("release with the registry away for 2 s: {:.1} s", started.elapsed().as_secs_f64());
    for image in &release.release_record().images {
        let name = image.repository.rsplit('/').next().unwrap();
        for tag in &image.tags {
            assert!(release.complete(name, tag), "{name}:{tag} names blobs the registry lacks");
        }
    }
}

#[tokio::test]
async fn release_to_another_registry_and_bad_arguments() {
    let mut release = Release::new();
    // The spec names another registry; --registry sends the same images here instead.
    release.stack.stack.edit_spec(&format!("registry: {}", release.registry.host), "registry: registry.example.org");
    release.stack.registry = "registry.example.org".into();
    release.build(Variants::Default).await;
    let unknown = release.run(&["tag", "nope", "--branch", "main"]);
    assert_eq!(unknown.status.code(), Some(3), "{}", stderr(&unknown));
    let variant = release.run(&["tag", "--variant", "tpu", "--branch", "main"]);
    assert_eq!(variant.status.code(), Some(3), "{}", stderr(&variant));
    succeeded(&release.run(&["tag", "base", "--branch", "main"]));
    let url = format!("http://{}", release.registry.host);
    succeeded(&release.run(&["release", "--registry", &url, "--untested"]));
    let record = release.release_record();
    assert_eq!(record.registry, release.registry.host);
    assert_eq!(record.images.len(), 1, "only what was tagged: {record:?}");
    assert_eq!(record.images[0].repository, format!("{}/{}/base", release.registry.host, release.stack.namespace));
    assert_eq!(release.digest("base", "1.0-main"), record.images[0].digest);
}

#[tokio::test]
async fn an_interrupted_tag_run_removes_its_containers_and_moves_no_tag() {
    let release = Release::new();
    release.stack.stack.edit_spec("lab: echo 4.2.5", "lab: sleep 60; echo 4.2.5");
    release.build(Variants::Default).await;
    let child = release.command(&["tag", "--branch", "main"], PASSWORD).spawn().unwrap();
    let pid = child.id();
    let engine = Engine::connect().await.unwrap();
    let mine = || async {
        let mut found = Vec::new();
        for id in engine.containers_labelled(PROBE_LABEL).await.unwrap() {
            if engine.container_label(&id, PROBE_LABEL).await.unwrap().as_deref() == Some(pid.to_string().as_str()) {
                found.push(id);
            }
        }
        found
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    // base's python command runs first; wait until app's container (sleeping) is up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while mine().await.is_empty() {
        assert!(Instant::now() < deadline, "no version container started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(mine().await.is_empty(), "the interrupted run left its container");
    let app = release.stack.repository("app");
    assert!(engine.image(&format!("{app}:1.0-main")).await.unwrap().is_none(), "a tag was moved");
}
