//! `cargo xtask bench ...`: benchmarks that print figures. Speed goals are checked here, by a
//! person reading ratios and times measured in one run, never by timed assertions in tests.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::git::ChangeSet;
use crate::graph::ImageGraph;
use crate::plan::{self, PlanRequest, Selection, Variants};
use crate::spec::Spec;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Load, validate and plan a generated stack (git excluded; target: under 50 ms), then a deep
    /// chain of images in both orders
    Plan(PlanBench),
    /// No-op rebuild against engine cache replay, and a full build against its critical path
    Build(BuildBench),
    /// The real stack pushed to a local registry, then decided on a fresh engine (target: under
    /// 2 s, no blob downloaded), next to the full rebuild a fresh engine did before
    Fresh(super::bench_registry::FreshBench),
    /// Runs the base's recipe twice and says whether both give the same image ID
    BaseRecipe(super::bench_registry::RecipeBench),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchStack {
    /// The busybox fixture stack (seconds)
    Fixture,
    /// The real stack in images/ (minutes: a full build without layer cache)
    Real,
    /// Both
    Both,
}

#[derive(Debug, Args)]
pub struct BuildBench {
    /// Which stack to measure
    #[arg(long, value_enum, default_value = "both")]
    pub stack: BenchStack,
    /// Timed repetitions of the no-op and replay builds (the median is reported)
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

#[derive(Debug, Args)]
pub struct PlanBench {
    /// Images in the generated stack
    #[arg(long, default_value_t = 1000)]
    pub images: usize,
    /// Files in the generated stack, all reported as changed
    #[arg(long, default_value_t = 50_000)]
    pub files: usize,
    /// Timed repetitions (the median is reported)
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// Images in the deep chain (each built on the one before), planned listed parents first and
    /// children first; 0 skips it
    #[arg(long, default_value_t = 20_000)]
    pub chain: usize,
    /// Timed repetitions of each chain (the median is reported)
    #[arg(long, default_value_t = 3)]
    pub chain_iterations: usize,
}

impl Bench {
    pub async fn run(&self, cli: &super::Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        match self {
            Bench::Plan(bench) => bench.run(out),
            Bench::Build(bench) => bench.run(cli, out).await,
            Bench::Fresh(bench) => bench.run(cli, out).await,
            Bench::BaseRecipe(bench) => bench.run(cli, out).await,
        }
    }
}

/// Writes a stack of `images` images (two variants, a tree with fan-out 3, one `depends_on`
/// every 10 images) and returns `files` paths spread over them (sources, tests, readmes), as git
/// would report them changed. The planner never reads those files (git is outside the timing),
/// so they are not written: creating 50,000 files costs this machine half a minute.
pub fn generate_stack(dir: &Path, images: usize, files: usize) -> anyhow::Result<BTreeSet<String>> {
    let images_dir = dir.join("images");
    fs::create_dir_all(&images_dir)?;
    let mut spec = String::from(
        "stack:\n  registry: registry.example.org\n  namespace: bench\n  tag_prefix: \"2026.11\"\nbuild_args:\n  PYTHON_VERSION: \"3.11\"\nvariants:\n  cpu: {}\n  gpu:\n    build_args: {CUDA: \"12\"}\nbases:\n  debian:\n    image: localhost/debian:bookworm\n    recipe:\n      debootstrap: {suite: bookworm, mirror: \"http://deb.debian.org/debian\"}\ndoc_commands:\n  python: python3 --version\nchanges:\n  ignore: [\"**/*.md\"]\n  test_only: [\"images/*/tests/**\"]\nimages:\n",
    );
    let mut changed = BTreeSet::new();
    for i in 0..images {
        let name = format!("img-{i:04}");
        let parent = if i == 0 { "debian".to_string() } else { format!("img-{:04}", (i - 1) / 3) };
        let dependency = (i >= 10 && i % 10 == 0).then(|| format!("img-{:04}", i / 10 - 1));
        writeln!(spec, "  {name}:\n    parent: {parent}\n    doc_commands: [python]")?;
        let mut dockerfile = String::from("ARG BASE_IMAGE\n");
        if let Some(dependency) = &dependency {
            writeln!(spec, "    depends_on: [{dependency}]")?;
            let arg = Spec::dependency_arg(dependency);
            writeln!(dockerfile, "ARG {arg}\nFROM ${{{arg}}} AS dep")?;
        }
        dockerfile.push_str("FROM ${BASE_IMAGE}\nRUN echo building \\\n  && true\nCOPY . /src\n");
        if dependency.is_some() {
            dockerfile.push_str("COPY --from=dep /src /dep\n");
        }
        let image_dir = images_dir.join(&name);
        fs::create_dir_all(&image_dir)?;
        fs::write(image_dir.join("Dockerfile"), dockerfile)?;
    }
    for f in 0..files {
        let image = format!("img-{:04}", f % images);
        let relative = match f % 5 {
            0 => format!("images/{image}/tests/test-{f}.yml"),
            1 => format!("images/{image}/README-{f}.md"),
            _ => format!("images/{image}/src/file-{f}.py"),
        };
        changed.insert(relative);
    }
    fs::write(images_dir.join("spec.yml"), spec)?;
    Ok(changed)
}

/// How a generated chain is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub images: usize,
    /// Listed children first (else parents first).
    pub children_first: bool,
    /// The last image built on the first instead of on the base: a cycle through all.
    pub closed: bool,
    /// One folder for every image (`shared`), instead of one each.
    pub shared_folder: bool,
}

/// The spec of a chain: `c-00000` built on `c-00001`, and so on, the last on a base, so that
/// names sort children first and a depth-first search from the smallest name walks the whole
/// chain.
pub fn chain_spec(chain: Chain) -> String {
    let mut spec = String::from(
        "stack: {registry: registry.example.org, namespace: bench, tag_prefix: \"2026.11\"}\nbases:\n  debian: {image: localhost/debian:bookworm}\nimages:\n",
    );
    let images = chain.images;
    let mut entries: Vec<usize> = (0..images).collect();
    if !chain.children_first {
        entries.reverse();
    }
    let folder = if chain.shared_folder { ", dir: shared" } else { "" };
    for i in entries {
        let parent = match (i + 1 == images, chain.closed) {
            (false, _) => format!("c-{:05}", i + 1),
            (true, false) => "debian".to_string(),
            (true, true) => "c-00000".to_string(),
        };
        writeln!(spec, "  c-{i:05}: {{parent: {parent}{folder}}}").expect("writing to a string");
    }
    spec
}

/// Writes a chain's spec and its Dockerfiles under `dir/images`; returns the root image's
/// Dockerfile as git would report it changed: the change rebuilds the whole chain, one image
/// per level.
pub fn generate_chain(dir: &Path, chain: Chain) -> anyhow::Result<BTreeSet<String>> {
    let images_dir = dir.join("images");
    let folders: Vec<String> = match chain.shared_folder {
        true => vec!["shared".to_string()],
        false => (0..chain.images).map(|i| format!("c-{i:05}")).collect(),
    };
    for folder in folders {
        fs::create_dir_all(images_dir.join(&folder))?;
        fs::write(images_dir.join(folder).join("Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")?;
    }
    fs::write(images_dir.join("spec.yml"), chain_spec(chain))?;
    Ok(BTreeSet::from([format!("images/c-{:05}/Dockerfile", chain.images.saturating_sub(1))]))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// Medians of load + validate, graph, plan and their total over `iterations` runs, and the last
/// plan.
struct Timings {
    load: Duration,
    graph: Duration,
    plan: Duration,
    total: Duration,
    last: plan::BuildPlan,
}

fn measure(spec_file: &Path, request: &PlanRequest, iterations: usize) -> anyhow::Result<Timings> {
    let (mut load, mut graph_time, mut plan_time, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..iterations.max(1) {
        let start = Instant::now();
        let spec = Spec::load(spec_file)?;
        let loaded = Instant::now();
        let graph = ImageGraph::new(&spec);
        let graphed = Instant::now();
        let plan = plan::plan(&spec, &graph, request, "images")?;
        let planned = Instant::now();
        load.push(loaded - start);
        graph_time.push(graphed - loaded);
        plan_time.push(planned - graphed);
        total.push(planned - start);
        last = Some(plan);
    }
    Ok(Timings {
        load: median(load),
        graph: median(graph_time),
        plan: median(plan_time),
        total: median(total),
        last: last.expect("at least one iteration"),
    })
}

fn since(files: BTreeSet<String>) -> PlanRequest {
    let changes = ChangeSet { since: "main".into(), merge_base: "0".repeat(40), files };
    PlanRequest {
        selection: Selection::Since(changes, None),
        images: Vec::new(),
        variants: Variants::All,
        platforms: crate::plan::Platforms::Default,
    }
}

impl PlanBench {
    pub fn run(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        self.wide(out)?;
        if self.chain > 0 {
            for children_first in [false, true] {
                self.deep(children_first, out)?;
            }
        }
        Ok(())
    }

    /// The wide stack: many images, many changed files.
    fn wide(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        writeln!(
            out,
            "generating {} images in {}, and {} changed files ...",
            self.images,
            dir.path().display(),
            self.files
        )?;
        let files = generate_stack(dir.path(), self.images, self.files)?;
        let spec_file = dir.path().join("images").join("spec.yml");
        let timings = measure(&spec_file, &since(files), self.iterations)?;
        let plan = &timings.last;
        writeln!(
            out,
            "plan: {} nodes to build, {} to re-test, {} changed files ({} ignored)",
            plan.to_build().count(),
            plan.to_test().count(),
            self.files,
            plan.ignored_files.len()
        )?;
        writeln!(out, "median of {} runs (git excluded):", self.iterations.max(1))?;
        writeln!(out, "  load + validate (spec and {} Dockerfiles)  {}", self.images, ms(timings.load))?;
        writeln!(out, "  graph                                  {}", ms(timings.graph))?;
        writeln!(out, "  plan                                   {}", ms(timings.plan))?;
        writeln!(
            out,
            "  total                                  {}  (target: under 50 ms: {})",
            ms(timings.total),
            if timings.total < Duration::from_millis(50) { "met" } else { "missed" }
        )?;
        Ok(())
    }

    /// A chain of `self.chain` images, its root changed: every image rebuilds, one per level.
    fn deep(&self, children_first: bool, out: &mut dyn Write) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let order = if children_first { "children first" } else { "parents first" };
        let start = Instant::now();
        let chain = Chain { images: self.chain, children_first, closed: false, shared_folder: false };
        let files = generate_chain(dir.path(), chain)?;
        writeln!(out, "\nchain of {} images listed {order} (generated in {}) ...", self.chain, ms(start.elapsed()))?;
        let spec_file = dir.path().join("images").join("spec.yml");
        let timings = measure(&spec_file, &since(files), self.chain_iterations)?;
        writeln!(
            out,
            "plan: {} nodes to build in {} levels; median of {} runs:",
            timings.last.to_build().count(),
            timings.last.levels.len(),
            self.chain_iterations.max(1)
        )?;
        writeln!(out, "  load + validate  {}", ms(timings.load))?;
        writeln!(out, "  graph            {}", ms(timings.graph))?;
        writeln!(out, "  plan             {}", ms(timings.plan))?;
        writeln!(out, "  total            {}", ms(timings.total))?;
        Ok(())
    }
}

/// Builds every image of `spec_path`'s default variant with `options`; returns the report and
/// the wall time.
async fn timed_build(
    spec_path: &Path,
    options: crate::build::BuildOptions,
) -> anyhow::Result<(crate::build::BuildReport, Duration)> {
    use std::sync::Arc;
    let spec = Spec::load(spec_path)?;
    let graph = ImageGraph::new(&spec);
    let request = PlanRequest {
        selection: Selection::All,
        images: Vec::new(),
        variants: Variants::Default,
        platforms: crate::plan::Platforms::Default,
    };
    let plan = plan::plan(&spec, &graph, &request, "images")?;
    let nodes = crate::build::build_set(&graph, &plan);
    let engine = crate::engine::Engine::connect().await?;
    let logs = tempfile::tempdir()?;
    let reporter = Arc::new(crate::progress::Reporter::quiet(logs.path()));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let report = crate::build::build(Arc::new(spec), &graph, &nodes, engine, options, reporter, rx).await?;
    let wall = start.elapsed();
    if report.failed() {
        anyhow::bail!("the build failed:\n{}", crate::build::failures(&report));
    }
    Ok((report, wall))
}

/// The longest chain of build durations through the graph: no scheduler can finish sooner.
fn critical_path(spec_path: &Path, report: &crate::build::BuildReport) -> anyhow::Result<Duration> {
    let spec = Spec::load(spec_path)?;
    let graph = ImageGraph::new(&spec);
    let mut finish: std::collections::HashMap<String, Duration> = std::collections::HashMap::new();
    for row in &report.rows {
        let before = graph
            .dependencies(&row.id)
            .into_iter()
            .filter_map(|(dep, _)| finish.get(&dep.name))
            .max()
            .copied()
            .unwrap_or_default();
        finish.insert(row.id.name.clone(), before + row.duration);
    }
    Ok(finish.values().max().copied().unwrap_or_default())
}

impl BuildBench {
    pub async fn run(&self, cli: &super::Cli, out: &mut dyn Write) -> anyhow::Result<()> {
        use crate::build::BuildOptions;
        let jobs = crate::paths::parallelism(2);
        let fixture_dir = tempfile::tempdir()?;
        let mut stacks: Vec<(&str, std::path::PathBuf)> = Vec::new();
        let namespace = format!("bench-{}", std::process::id());
        if self.stack != BenchStack::Real {
            stacks.push((
                "fixture",
                crate::fixture::prepare(fixture_dir.path(), &namespace, crate::fixture::BUSYBOX_BASE)?,
            ));
        }
        if self.stack != BenchStack::Fixture {
            stacks.push(("real", cli.spec_path()));
        }
        for (name, spec_path) in stacks {
            writeln!(out, "== {name} stack ({}), {jobs} jobs", spec_path.display())?;
            // Make sure everything exists, then measure.
            let (first, _) = timed_build(&spec_path, BuildOptions { jobs, ..Default::default() }).await?;
            writeln!(out, "images: {}", first.rows.len())?;
            let mut noop = Vec::new();
            let mut replay = Vec::new();
            for _ in 0..self.repeats.max(1) {
                noop.push(timed_build(&spec_path, BuildOptions { jobs, ..Default::default() }).await?.1);
                replay.push(timed_build(&spec_path, BuildOptions { jobs, force: true, ..Default::default() }).await?.1);
            }
            let (noop, replay) = (median(noop), median(replay));
            writeln!(out, "(a) no-op rebuild (inputs digest, nothing built)       {}", ms(noop))?;
            writeln!(out, "    the same images replayed from the engine's cache   {}", ms(replay))?;
            writeln!(
                out,
                "    ratio: {:.1}x faster (target: 10x or better)",
                replay.as_secs_f64() / noop.as_secs_f64().max(1e-9)
            )?;
            let (full, wall) =
                timed_build(&spec_path, BuildOptions { jobs, no_cache: true, ..Default::default() }).await?;
            let sum: Duration = full.rows.iter().map(|row| row.duration).sum();
            let critical = critical_path(&spec_path, &full)?;
            writeln!(out, "(b) full build without layer cache: wall {}", ms(wall))?;
            writeln!(
                out,
                "    sum of image build times {} (wall/sum {:.2})",
                ms(sum),
                wall.as_secs_f64() / sum.as_secs_f64().max(1e-9)
            )?;
            writeln!(
                out,
                "    critical path {} (wall/critical path {:.2}; 1.00 is the limit)",
                ms(critical),
                wall.as_secs_f64() / critical.as_secs_f64().max(1e-9)
            )?;
        }
        // The fixture's images were only for measuring: their tags go (never by image ID: a base
        // pin shares its ID with the busybox base other stacks use).
        let engine = crate::engine::Engine::connect().await?;
        let prefix = format!("registry.example.org/{namespace}/");
        for image in engine.images_named(&format!("{prefix}*")).await? {
            for tag in image.repo_tags.iter().filter(|tag| tag.starts_with(&prefix)) {
                engine.remove_image(tag, false).await?;
            }
        }
        Ok(())
    }
}
