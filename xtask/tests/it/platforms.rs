//! A stack of two platforms on the real engine: the fixture stack built for `linux/amd64` and
//! `linux/arm64` (its arm64 base from Debian's busybox-static:arm64, its arm64 builds under
//! QEMU on an amd64 host: .ci/run registers the binfmt handler), each platform under its own
//! pin, and each image running with its own architecture; `--engine` sending a platform to
//! another engine; versions compared across platforms; and releases to a real registry: one
//! OCI image index over the platform pins, read back through the registry's API and by skopeo,
//! named by the tags and kept by promotion, and no index nor tag when a platform is missing.

use std::process::{Command, Output};

use tokio::sync::watch;
use xtask::build::{BuildOptions, BuildReport};
use xtask::credentials::Credentials;
use xtask::engine::Engine;
use xtask::plan::{Platforms, Variants};
use xtask::registry::Registry as Client;
use xtask::release::index::{config_digest, config_platform, index_platforms, INDEX_MEDIA_TYPE};
use xtask::release::ReleaseRecord;
use xtask::scheduler::Outcome;

use crate::common::engine::EngineStack;
use crate::common::registry::Registry;
use crate::common::second_engine::SecondEngine;

fn names_and_pins(report: &BuildReport) -> Vec<(String, String)> {
    report
        .rows
        .iter()
        .map(|row| match &row.outcome {
            Outcome::Done(built) => (row.id.name.clone(), built.pin.clone()),
            other => panic!("{} did not build: {other:?}\n{}", row.id.name, xtask::build::failures(report)),
        })
        .collect()
}

async fn build_all(stack: &EngineStack) -> BuildReport {
    build_variants(stack, Variants::Default).await
}

async fn build_variants(stack: &EngineStack, variants: Variants) -> BuildReport {
    let (_tx, rx) = watch::channel(false);
    stack.build_for(variants, Platforms::All, BuildOptions::default(), rx).await
}

#[tokio::test]
async fn both_platforms_build_under_their_own_pins_and_run_their_own_architecture() {
    let stack = EngineStack::with_platforms();
    let first = build_all(&stack).await;
    let pins = names_and_pins(&first);
    let names: Vec<&str> = pins.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "base/amd64",
            "tools/amd64",
            "base/arm64",
            "tools/arm64",
            "app/amd64",
            "app/arm64",
            "extra/amd64",
            "extra/arm64"
        ]
    );
    let pin = |name: &str| pins.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_ne!(pin("base/amd64"), pin("base/arm64"), "each platform has a pin of its own");
    assert_eq!(pin("base/amd64").rsplit_once(':').unwrap().0, pin("base/arm64").rsplit_once(':').unwrap().0);
    let engine = Engine::connect().await.unwrap();
    for (suffix, architecture, machine) in [("amd64", "amd64", "x86_64"), ("arm64", "arm64", "aarch64")] {
        let reference = format!("{}:build-{suffix}", stack.repository("extra"));
        let image = engine.image(&reference).await.unwrap().unwrap_or_else(|| panic!("{reference} is tagged"));
        assert_eq!(image.architecture.as_deref(), Some(architecture), "{reference}");
        let commands = ["busybox uname -m".to_string(), "cat /tools.txt /extra.txt".to_string()];
        let outputs = engine.run_in_image(&reference, &commands, std::time::Duration::from_secs(60)).await.unwrap();
        assert_eq!(outputs[0].stdout.trim(), machine, "{reference}: {:?}", outputs[0]);
        assert_eq!(outputs[1].stdout, "tools\nextra\n", "{reference}: {:?}", outputs[1]);
    }
    let second = build_all(&stack).await;
    assert!(
        second
            .rows
            .iter()
            .all(|row| matches!(&row.outcome, Outcome::Done(b) if b.status != xtask::build::Status::Built)),
        "a second run builds nothing: {:?}",
        names_and_pins(&second)
    );
}

const USER: &str = "ci";
const PASSWORD: &str = "pl4tforms";

/// Runs `cargo xtask` on `stack`'s spec with the registry's credentials.
fn xtask(stack: &EngineStack, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--spec")
        .arg(stack.stack.spec_file())
        .args(args)
        .env("STACK_REGISTRY_USERNAME", USER)
        .env("STACK_REGISTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn client(registry: &Registry) -> Client {
    Client::new(&registry.host, Some(Credentials::new(&registry.host, USER, PASSWORD, "test")))
}

/// What `skopeo inspect --raw` reads under `reference` (`host/path:tag`): an outside witness.
fn skopeo_raw(reference: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds", &format!("{USER}:{PASSWORD}")])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs (Debian's skopeo; .ci/run installs it)");
    assert!(output.status.success(), "skopeo: {}", text(&output));
    output.stdout
}

#[tokio::test]
async fn a_release_writes_one_index_over_both_platforms_that_tags_and_promotions_name() {
    let registry = Registry::start(Some((USER, PASSWORD)));
    let mut stack = EngineStack::with_platforms();
    stack.use_registry(&registry.host);
    // Every variant: a promotion moves the tag of every image of the stack.
    names_and_pins(&build_variants(&stack, Variants::All).await);
    let tagged = xtask(&stack, &["tag", "--all-platforms", "--all-variants", "--branch", "main"]);
    assert!(tagged.status.success(), "{}", text(&tagged));
    let released = xtask(&stack, &["release", "--untested"]);
    assert!(released.status.success(), "{}", text(&released));
    let record: ReleaseRecord =
        serde_json::from_slice(&std::fs::read(stack.stack.root().join("target/xtask/release.json")).unwrap()).unwrap();
    let index = record.images.iter().find(|image| image.node == "base").expect("an index entry for base");
    let platforms: Vec<&str> = index.platforms.iter().map(|p| p.platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    let client = client(&registry);
    let path = format!("{}/base", stack.namespace);
    let tag = client.manifest(&path, "1.0-main").unwrap().expect("the tag is in the registry");
    assert_eq!(tag.media_type, INDEX_MEDIA_TYPE);
    assert_eq!(Some(&tag.digest), index.digest.as_ref(), "the tag names the index");
    let listed = index_platforms(&tag.bytes);
    for ((platform, digest), expected) in listed.iter().zip(&index.platforms) {
        assert_eq!((platform, digest), (&expected.platform, &expected.digest));
        let manifest = client.manifest(&path, digest).unwrap().expect("each platform manifest is stored");
        let config = client.blob(&path, &config_digest(&manifest).unwrap()).unwrap().unwrap();
        assert_eq!(config_platform(&config).as_deref(), Some(platform.as_str()), "{platform}'s image says so");
    }
    assert_eq!(listed.len(), 2);
    let pinned = |node: &str| record.images.iter().find(|i| i.node == node).unwrap().digest.clone();
    assert_eq!(Some(&listed[1].1), pinned("base/arm64").as_ref(), "the index names the arm64 pin's manifest");

    // skopeo, an outside witness, reads the same index: two platform manifests, the right
    // architectures.
    let witness = skopeo_raw(&format!("{}/{path}:1.0-main", registry.host));
    assert_eq!(xtask::registry::digest_of(&witness), tag.digest);
    let json: serde_json::Value = serde_json::from_slice(&witness).unwrap();
    let architectures: Vec<&str> =
        json["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(architectures, ["amd64", "arm64"]);

    let promoted = xtask(&stack, &["release", "--promote", "1.0-main", "--to", "stable"]);
    assert!(promoted.status.success(), "{}", text(&promoted));
    let stable = client.manifest(&path, "stable").unwrap().unwrap();
    assert_eq!(stable.digest, tag.digest, "promotion keeps the index digest");
}

#[tokio::test]
async fn a_release_with_a_platform_missing_writes_no_index_and_moves_no_tag() {
    let registry = Registry::start(Some((USER, PASSWORD)));
    let mut stack = EngineStack::with_platforms();
    stack.use_registry(&registry.host);
    // Only this host's platform is built and tagged: no record for the arm64 images.
    let (_tx, rx) = watch::channel(false);
    stack.build_for(Variants::Default, Platforms::Default, BuildOptions::default(), rx).await;
    let tagged = xtask(&stack, &["tag", "--branch", "main"]);
    assert!(tagged.status.success(), "{}", text(&tagged));
    let refused = xtask(&stack, &["release", "--untested"]);
    assert_eq!(refused.status.code(), Some(8), "{}", text(&refused));
    let said = text(&refused);
    assert!(said.contains("base: the image index would lack linux/arm64 (no tag record names base/arm64)"), "{said}");
    assert!(said.contains("--partial"), "{said}");
    let client = client(&registry);
    let path = format!("{}/base", stack.namespace);
    assert!(client.manifest(&path, "1.0-main").unwrap().is_none(), "no tag moved");
    let pin = xtask::tags::TagRecord::clone(
        &serde_json::from_slice(&std::fs::read(stack.stack.root().join("target/xtask/tags.json")).unwrap()).unwrap(),
    )
    .images[0]
        .pin
        .clone();
    assert!(client.manifest(&path, &pin).unwrap().is_none(), "nothing was pushed either");

    let partial = xtask(&stack, &["release", "--untested", "--partial"]);
    assert!(partial.status.success(), "{}", text(&partial));
    let tag = client.manifest(&path, "1.0-main").unwrap().unwrap();
    assert_eq!(index_platforms(&tag.bytes).len(), 1, "an index of the platform there is, as asked");
    assert!(text(&partial).contains("note: base: the index lacks linux/arm64"), "{}", text(&partial));
}

#[tokio::test]
async fn tag_refuses_a_version_that_differs_between_platforms() {
    let stack = EngineStack::with_platforms();
    stack.stack.edit_spec(
        "doc_commands:\n  os-release: cat /etc/os-release\n",
        "doc_commands:\n  os-release: cat /etc/os-release\nversion_tags:\n  machine: busybox uname -m\n",
    );
    stack
        .stack
        .edit_spec("    doc_commands: [os-release]\n", "    doc_commands: [os-release]\n    version_tags: [machine]\n");
    names_and_pins(&build_all(&stack).await);
    let refused = xtask(&stack, &["tag", "base", "--all-platforms", "--branch", "main"]);
    assert_eq!(refused.status.code(), Some(8), "{}", text(&refused));
    assert!(
        text(&refused).contains(
            "base: version tag `machine` differs between platforms: machine-x86_64 on linux/amd64, machine-aarch64 on linux/arm64"
        ),
        "{}",
        text(&refused)
    );
    let engine = Engine::connect().await.unwrap();
    assert!(engine.image(&format!("{}:1.0-main", stack.repository("base"))).await.unwrap().is_none(), "no tag moved");
}

#[tokio::test]
async fn engine_maps_a_platform_to_another_engine() {
    let stack = EngineStack::with_platforms();
    let other = SecondEngine::start();
    let engine_flag = format!("linux/amd64={}", other.host);
    let built = xtask(&stack, &["build", "tools", "--all-platforms", "--engine", &engine_flag]);
    assert!(built.status.success(), "{}", text(&built));
    assert!(text(&built).contains("linux/arm64 under QEMU"), "{}", text(&built));
    let here = Engine::connect().await.unwrap();
    let there = Engine::connect_to(&other.host).await.unwrap();
    let tools = stack.repository("tools");
    let on = |engine: &Engine, arch: &str| {
        let reference = format!("{tools}:build-{arch}");
        let engine = engine.clone();
        async move { engine.image(&reference).await.unwrap().and_then(|image| image.architecture) }
    };
    assert_eq!(on(&there, "amd64").await.as_deref(), Some("amd64"), "amd64 built on the engine named for it");
    assert_eq!(on(&here, "amd64").await, None, "and not here");
    assert_eq!(on(&here, "arm64").await.as_deref(), Some("arm64"), "arm64 built on DOCKER_HOST's engine");
}
