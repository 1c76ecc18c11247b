//! A fixture stack in its own namespace on the real engine, for tests that build: the busybox
//! base imported once per test binary, images removed when the stack is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use xtask::build::{self, BuildOptions, BuildReport};
use xtask::engine::Engine;
use xtask::graph::ImageGraph;
use xtask::plan::{plan, PlanRequest, Platforms, Selection, Variants};
use xtask::progress::Reporter;
use xtask::spec::Spec;

use super::Stack;

pub const BASE: &str = xtask::fixture::BUSYBOX_BASE;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Imports the busybox base once for the whole test binary: a new import gets a new ID, which
/// would make every other test's images out of date.
pub fn ensure_base() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let engine = Engine::connect().await.unwrap();
                if engine.image(BASE).await.unwrap().is_none() {
                    let dir = tempfile::tempdir().unwrap();
                    let tar = dir.path().join("busybox.tar");
                    xtask::fixture::busybox_rootfs(&tar).unwrap();
                    let (repository, tag) = BASE.rsplit_once(':').unwrap();
                    engine.import(std::fs::read(tar).unwrap(), repository, tag).await.unwrap();
                }
            });
        })
        .join()
        .unwrap();
    });
}

/// A fixture stack in its own namespace, with a busybox base recipe. Removes its images when
/// dropped, whether the test passed or not.
pub struct EngineStack {
    pub stack: Stack,
    pub namespace: String,
    pub registry: String,
}

impl EngineStack {
    pub fn new() -> EngineStack {
        ensure_base();
        EngineStack::with_base(BASE)
    }

    /// A stack on base `base`, made by the `import` recipe when the engine lacks it.
    pub fn with_base(base: &str) -> EngineStack {
        let stack = Stack::empty();
        let namespace = format!("t{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        xtask::fixture::prepare(stack.root(), &namespace, base).unwrap();
        EngineStack { stack, namespace, registry: "registry.example.org".into() }
    }

    /// A stack of two platforms, `linux/amd64` and `linux/arm64` (the arm64 base from Debian's
    /// busybox-static:arm64, run under QEMU here): [`xtask::fixture::prepare_platforms`].
    pub fn with_platforms() -> EngineStack {
        ensure_base();
        let stack = Stack::empty();
        let namespace = format!("t{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        xtask::fixture::prepare_platforms(stack.root(), &namespace, BASE).unwrap_or_else(|e| panic!("{e}"));
        EngineStack { stack, namespace, registry: "registry.example.org".into() }
    }

    /// Publishes the stack to `host` instead of the fixture's registry.
    pub fn use_registry(&mut self, host: &str) {
        self.stack.edit_spec("registry: registry.example.org", &format!("registry: {host}"));
        self.registry = host.to_string();
    }

    pub fn repository(&self, image: &str) -> String {
        format!("{}/{}/{image}", self.registry, self.namespace)
    }

    pub async fn build(&self, variants: Variants, options: BuildOptions) -> BuildReport {
        let (_tx, rx) = watch::channel(false);
        self.build_with(variants, options, rx).await
    }

    pub async fn build_with(
        &self,
        variants: Variants,
        options: BuildOptions,
        interrupt: watch::Receiver<bool>,
    ) -> BuildReport {
        self.build_for(variants, Platforms::Default, options, interrupt).await
    }

    /// Builds every image of `variants` for `platforms`.
    pub async fn build_for(
        &self,
        variants: Variants,
        platforms: Platforms,
        options: BuildOptions,
        interrupt: watch::Receiver<bool>,
    ) -> BuildReport {
        let spec = Spec::load(&self.stack.spec_file()).unwrap_or_else(|e| panic!("{e}"));
        let graph = ImageGraph::new(&spec);
        let request = PlanRequest { selection: Selection::All, images: vec![], variants, platforms };
        let plan = plan(&spec, &graph, &request, "images").unwrap();
        let nodes = build::build_set(&graph, &plan);
        let engine = Engine::connect().await.unwrap();
        let reporter = Arc::new(Reporter::quiet(&self.stack.root().join("target/logs")));
        let options = BuildOptions { jobs: 4, ..options };
        build::build(Arc::new(spec), &graph, &nodes, engine, options, reporter, interrupt).await.unwrap()
    }
}

/// Removes every tag under `registry/namespace/` from `engine`: an image goes with its last
/// tag. Never by image ID: a base pin shares its ID with the fixture's busybox base, which
/// every other test uses.
pub async fn remove_namespace(engine: &Engine, registry: &str, namespace: &str) {
    let prefix = format!("{registry}/{namespace}/");
    for image in engine.images_named(&format!("{prefix}*")).await.unwrap() {
        for tag in image.repo_tags.iter().filter(|tag| tag.starts_with(&prefix)) {
            let _ = engine.remove_image(tag, false).await;
        }
    }
}

impl Drop for EngineStack {
    fn drop(&mut self) {
        let (registry, namespace) = (self.registry.clone(), self.namespace.clone());
        // A runtime of its own: drop may run inside a test's runtime.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let engine = Engine::connect().await.unwrap();
                remove_namespace(&engine, &registry, &namespace).await;
            });
        })
        .join()
        .unwrap();
    }
}
