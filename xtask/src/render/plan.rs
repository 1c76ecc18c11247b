//! A [`BuildPlan`] as text (for people), JSON (schema `stack-plan/v1`, documented in
//! `docs/plan-json.md`) or a GitHub Actions `strategy.matrix`.

use serde::Serialize;

use crate::plan::{BuildPlan, Reason, Scope};
use crate::spec::Spec;

/// The JSON schema's name; bump it on any incompatible change.
pub const PLAN_SCHEMA: &str = "stack-plan/v1";

pub fn text(plan: &BuildPlan) -> String {
    let mut out = String::new();
    let builds = plan.to_build().count();
    let tests = plan.to_test().count();
    let scope = match &plan.scope {
        Scope::All => "all images".to_string(),
        Scope::Requested => "requested images".to_string(),
        Scope::Since { since, merge_base, changed_files } => {
            format!(
                "changes since {since} (merge base {}, {changed_files} files)",
                &merge_base[..merge_base.len().min(12)]
            )
        }
    };
    let mut variants =
        format!("variant{} {}", if plan.variants.len() == 1 { "" } else { "s" }, plan.variants.join(", "));
    if plan.images.iter().any(|image| image.id.name != image.id.image_variant) || plan.platforms.len() > 1 {
        variants.push_str(&format!("; platform{} {}", plural(plan.platforms.len()), plan.platforms.join(", ")));
    }
    if builds + tests == 0 {
        out.push_str(&format!("Nothing to build or test: {scope}; {variants}.\n"));
    } else {
        out.push_str(&format!(
            "{builds} image{} to build in {} level{}, {tests} to re-test only ({scope}; {variants})\n",
            plural(builds),
            plan.levels.len(),
            plural(plan.levels.len()),
        ));
    }
    let width = plan.images.iter().map(|image| image.id.name.len()).max().unwrap_or(0);
    let mut level = None;
    for image in plan.to_build() {
        if image.level != level {
            level = image.level;
            out.push_str(&format!("\nlevel {}\n", level.unwrap_or_default()));
        }
        push_image(&mut out, &image.id.name, &image.reasons, width);
    }
    if tests > 0 {
        out.push_str("\nre-test only\n");
        for image in plan.to_test() {
            push_image(&mut out, &image.id.name, &image.reasons, width);
        }
    }
    push_files(&mut out, "ignored by change rules", &plan.ignored_files);
    push_files(&mut out, "outside every image (no rebuild)", &plan.unmapped_files);
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn push_image(out: &mut String, name: &str, reasons: &[Reason], width: usize) {
    for (i, reason) in reasons.iter().enumerate() {
        let label = if i == 0 { name } else { "" };
        out.push_str(&format!("  {label:width$}  {reason}\n"));
    }
}

fn push_files(out: &mut String, title: &str, files: &[String]) {
    if files.is_empty() {
        return;
    }
    out.push_str(&format!("\n{title}: {} file{}\n", files.len(), plural(files.len())));
    for file in files.iter().take(10) {
        out.push_str(&format!("  {file}\n"));
    }
    if files.len() > 10 {
        out.push_str(&format!("  ... and {} more\n", files.len() - 10));
    }
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    schema: &'static str,
    /// The spec planned, relative to the repository root.
    spec: String,
    selection: JsonSelection<'a>,
    variants: &'a [String],
    platforms: &'a [String],
    levels: &'a [Vec<String>],
    images: Vec<JsonImage<'a>>,
    ignored_files: &'a [String],
    unmapped_files: &'a [String],
}

#[derive(Serialize)]
struct JsonSelection<'a> {
    mode: &'static str,
    since: Option<&'a str>,
    merge_base: Option<&'a str>,
    changed_files: Option<usize>,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    name: &'a str,
    image: &'a str,
    variant: &'a str,
    platform: String,
    action: &'static str,
    level: Option<usize>,
    repository: String,
    context: String,
    dockerfile: String,
    parent: Option<JsonParent<'a>>,
    depends_on: &'a [String],
    reasons: Vec<JsonReason<'a>>,
}

#[derive(Serialize)]
struct JsonParent<'a> {
    kind: &'static str,
    name: &'a str,
}

#[derive(Serialize)]
struct JsonReason<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    place: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [String]>,
    text: String,
}

fn json_reason(reason: &Reason) -> JsonReason<'_> {
    let mut json = JsonReason {
        kind: reason.kind(),
        path: None,
        image: None,
        pin: None,
        place: None,
        fields: None,
        text: reason.to_string(),
    };
    match reason {
        Reason::Changed { path } | Reason::RebuildAll { path } | Reason::TestsChanged { path } => {
            json.path = Some(path)
        }
        Reason::ParentRebuilt { parent } | Reason::ParentTestsChanged { parent } => json.image = Some(parent),
        Reason::DependencyRebuilt { dependency } => json.image = Some(dependency),
        Reason::SpecChanged { fields } => json.fields = Some(fields),
        Reason::UpToDate { pin, place } => {
            json.pin = Some(pin);
            json.place = Some(place);
        }
        Reason::All | Reason::Requested => {}
    }
    json
}

/// The plan as JSON; paths are relative to the repository root (`spec_dir` is the spec's folder).
pub fn json(spec: &Spec, plan: &BuildPlan, spec_dir: &str) -> String {
    let (mode, since, merge_base, changed_files) = match &plan.scope {
        Scope::All => ("all", None, None, None),
        Scope::Requested => ("requested", None, None, None),
        Scope::Since { since, merge_base, changed_files } => {
            ("since", Some(since.as_str()), Some(merge_base.as_str()), Some(*changed_files))
        }
    };
    let images = plan
        .images
        .iter()
        .map(|planned| {
            let image = &spec.images[&planned.id.image];
            let parent = image.parents.get(&planned.id.variant).map(|parent| JsonParent {
                kind: match parent {
                    crate::spec::Parent::Image(_) => "image",
                    crate::spec::Parent::Base(_) => "base",
                },
                name: parent.name(),
            });
            JsonImage {
                name: &planned.id.name,
                image: &planned.id.image,
                variant: &planned.id.variant,
                platform: planned.id.platform.to_string(),
                action: planned.action.as_str(),
                level: planned.level,
                repository: spec.repository(&planned.id.image, &planned.id.variant),
                context: Spec::repo_path(spec_dir, &image.dir),
                dockerfile: Spec::repo_path(spec_dir, &image.dockerfile),
                parent,
                depends_on: &image.depends_on,
                reasons: planned.reasons.iter().map(json_reason).collect(),
            }
        })
        .collect();
    let document = JsonPlan {
        schema: PLAN_SCHEMA,
        spec: spec.repo_file(spec_dir),
        selection: JsonSelection { mode, since, merge_base, changed_files },
        variants: &plan.variants,
        platforms: &plan.platforms,
        levels: &plan.levels,
        images,
        ignored_files: &plan.ignored_files,
        unmapped_files: &plan.unmapped_files,
    };
    serde_json::to_string_pretty(&document).expect("plan serializes") + "\n"
}

#[derive(Serialize)]
struct Matrix<'a> {
    include: Vec<MatrixEntry<'a>>,
}

#[derive(Serialize)]
struct MatrixEntry<'a> {
    name: &'a str,
    image: &'a str,
    variant: &'a str,
    /// In a stack of several platforms only (a stack of one has the same entries as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
    action: &'static str,
    level: Option<usize>,
}

#[derive(Serialize)]
struct LevelEntry<'a> {
    node: &'a str,
    image: &'a str,
    variant: &'a str,
    platform: String,
    /// The GitHub-hosted runner of the node's platform: arm64 nodes build natively on an arm one.
    runner: &'static str,
    /// The node's name with `/` as `-`, for artifact and file names (`scipy-notebook-arm64`).
    file: String,
}

/// The GitHub-hosted runner that runs `platform` natively (others emulate it on the first).
pub fn runner(platform: &crate::platform::Platform) -> &'static str {
    match platform.architecture.as_str() {
        "arm64" => "ubuntu-24.04-arm",
        _ => "ubuntu-24.04",
    }
}

/// The plan as `name=value` lines for `$GITHUB_OUTPUT`, for a workflow with one job per level:
/// `levels=N`; `level<i>={"include":[{"node","image","variant","platform","runner","file"},...]}`
/// for each level with
/// images to build; `test=` for the images to re-test only; `gpu=` for the images of GPU variants
/// (built or re-tested), whose GPU trials a GPU runner runs. A list with nothing in it gives no
/// line: GitHub then reads the output as empty, and the job it feeds is skipped.
pub fn github_levels(spec: &Spec, plan: &BuildPlan) -> String {
    fn entry(image: &crate::plan::PlannedImage) -> LevelEntry<'_> {
        LevelEntry {
            node: &image.id.name,
            image: &image.id.image,
            variant: &image.id.variant,
            platform: image.id.platform.to_string(),
            runner: runner(&image.id.platform),
            file: image.id.name.replace('/', "-"),
        }
    }
    let matrix = |entries: Vec<LevelEntry>| {
        serde_json::to_string(&serde_json::json!({ "include": entries })).expect("matrix serializes")
    };
    let mut out = format!("levels={}\n", plan.levels.len());
    for level in 0..plan.levels.len() {
        let entries: Vec<LevelEntry> = plan.to_build().filter(|image| image.level == Some(level)).map(entry).collect();
        out.push_str(&format!("level{level}={}\n", matrix(entries)));
    }
    let tests: Vec<LevelEntry> = plan.to_test().map(entry).collect();
    if !tests.is_empty() {
        out.push_str(&format!("test={}\n", matrix(tests)));
    }
    let gpu: Vec<LevelEntry> =
        plan.images.iter().filter(|image| spec.variant(&image.id.variant).is_some_and(|v| v.gpu)).map(entry).collect();
    if !gpu.is_empty() {
        out.push_str(&format!("gpu={}\n", matrix(gpu)));
    }
    out
}

/// `{"include": [...]}`, one entry per image, ready for `strategy.matrix: ${{ fromJSON(...) }}`.
/// One line, so it can go straight into `$GITHUB_OUTPUT`.
pub fn github_matrix(plan: &BuildPlan) -> String {
    let include = plan
        .images
        .iter()
        .map(|image| MatrixEntry {
            name: &image.id.name,
            image: &image.id.image,
            variant: &image.id.variant,
            platform: (image.id.name != image.id.image_variant).then(|| image.id.platform.to_string()),
            action: image.action.as_str(),
            level: image.level,
        })
        .collect();
    serde_json::to_string(&Matrix { include }).expect("matrix serializes") + "\n"
}
