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
    /// Load, validate and plan a generated stack (git excluded); target: under 50 ms
    Plan(PlanBench),
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
}

impl Bench {
    pub fn run(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        match self {
            Bench::Plan(bench) => bench.run(out),
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

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

impl PlanBench {
    pub fn run(&self, out: &mut dyn Write) -> anyhow::Result<()> {
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
        let changes = ChangeSet { since: "main".into(), merge_base: "0".repeat(40), files };
        let request = PlanRequest { selection: Selection::Since(changes), images: Vec::new(), variants: Variants::All };
        let (mut load, mut graph_time, mut plan_time, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..self.iterations.max(1) {
            let start = Instant::now();
            let spec = Spec::load(&spec_file)?;
            let loaded = Instant::now();
            let graph = ImageGraph::new(&spec);
            let graphed = Instant::now();
            let plan = plan::plan(&spec, &graph, &request, "images")?;
            let planned = Instant::now();
            load.push(loaded - start);
            graph_time.push(graphed - loaded);
            plan_time.push(planned - graphed);
            total.push(planned - start);
            last = Some(plan);
        }
        let plan = last.expect("at least one iteration");
        writeln!(
            out,
            "plan: {} nodes to build, {} to re-test, {} changed files ({} ignored)",
            plan.to_build().count(),
            plan.to_test().count(),
            self.files,
            plan.ignored_files.len()
        )?;
        writeln!(out, "median of {} runs (git excluded):", self.iterations.max(1))?;
        writeln!(out, "  load + validate (spec and {} Dockerfiles)  {}", self.images, ms(median(load)))?;
        writeln!(out, "  graph                                  {}", ms(median(graph_time)))?;
        writeln!(out, "  plan                                   {}", ms(median(plan_time)))?;
        let total = median(total);
        writeln!(
            out,
            "  total                                  {}  (target: under 50 ms: {})",
            ms(total),
            if total < Duration::from_millis(50) { "met" } else { "missed" }
        )?;
        Ok(())
    }
}
