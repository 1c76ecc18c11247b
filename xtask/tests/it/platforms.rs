//! A stack of two platforms on the real engine: the fixture stack built for `linux/amd64` and
//! `linux/arm64` (its arm64 base from Debian's busybox-static:arm64, its arm64 builds under
//! QEMU on an amd64 host: .ci/run registers the binfmt handler), each platform under its own
//! pin, and each image running with its own architecture.

use tokio::sync::watch;
use xtask::build::{BuildOptions, BuildReport};
use xtask::engine::Engine;
use xtask::plan::{Platforms, Variants};
use xtask::scheduler::Outcome;

use crate::common::engine::EngineStack;

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
    let (_tx, rx) = watch::channel(false);
    stack.build_for(Variants::Default, Platforms::All, BuildOptions::default(), rx).await
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
