//! What a build run says at the end: the summary table (image, variant, status, duration,
//! size, size change), each failure with its step, last lines and log, and the size budget
//! check both the builder and up-to-date images go through. Pure string building.

use crate::graph::NodeId;
use crate::progress::{human_duration, human_size};
use crate::scheduler::Outcome;
use crate::spec::Spec;

use super::{BuildReport, Status};

/// Why an image of `size` bytes breaks its size budget in the spec, if it does.
pub fn over_budget(spec: &Spec, id: &NodeId, size: i64) -> Option<String> {
    let budget = i64::try_from(*spec.images.get(&id.image)?.size_budgets.get(&id.variant)?).unwrap_or(i64::MAX);
    (size > budget).then(|| {
        format!(
            "{} is {} ({size} bytes), over its size budget of {} by {}; make the image smaller, or raise \
             `images.{}.size_budget` in {}",
            id.name,
            human_size(size),
            human_size(budget),
            human_size(size - budget),
            id.image,
            spec.file.display()
        )
    })
}

/// The summary table: image (`image/arch` in a stack of several platforms), variant, status,
/// duration, size, size change.
pub fn summary(report: &BuildReport) -> String {
    let mut rows = vec![[
        "IMAGE".to_string(),
        "VARIANT".into(),
        "STATUS".into(),
        "DURATION".into(),
        "SIZE".into(),
        "CHANGE".into(),
    ]];
    for row in &report.rows {
        let (status, size, change) = match &row.outcome {
            Outcome::Done(built) => {
                let status = match built.status {
                    Status::Built if built.pushed => "built, pushed",
                    Status::Built => "built",
                    Status::UpToDate if built.pushed => "up to date, pushed",
                    Status::UpToDate => "up to date",
                    Status::Pulled => "up to date (pulled)",
                    Status::InRegistry => "up to date in registry",
                };
                let change = match built.previous_size {
                    _ if built.status == Status::InRegistry => String::new(),
                    Some(previous) if previous != built.size => {
                        let delta = built.size - previous;
                        format!("{}{}", if delta > 0 { "+" } else { "" }, human_size(delta))
                    }
                    Some(_) => "=".to_string(),
                    None => "new".to_string(),
                };
                let size = if built.status == Status::InRegistry { built.pin_tag() } else { human_size(built.size) };
                (status.to_string(), size, change)
            }
            Outcome::Failed(_) => ("FAILED".into(), String::new(), String::new()),
            Outcome::Skipped { because } => {
                (format!("skipped (parent failed: {because})"), String::new(), String::new())
            }
            Outcome::Cancelled => ("interrupted".into(), String::new(), String::new()),
            Outcome::NotStarted => ("not started".into(), String::new(), String::new()),
        };
        let duration = if row.started.is_some() { human_duration(row.duration) } else { String::new() };
        // In a stack of several platforms, the image's name carries its platform.
        let image = match row.id.name.strip_prefix(&row.id.image_variant) {
            Some(suffix) if !suffix.is_empty() => format!("{}{suffix}", row.id.image),
            _ => row.id.image.clone(),
        };
        rows.push([image, row.id.variant.clone(), status, duration, size, change]);
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().enumerate().map(|(c, cell)| format!("{cell:w$}", w = widths[c])).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Each failure: the image, the failing step, its last lines of output and the log's path.
pub fn failures(report: &BuildReport) -> String {
    let mut out = String::new();
    for row in &report.rows {
        if let Outcome::Failed(failure) = &row.outcome {
            out.push_str(&format!("\n{} failed", row.id.name));
            if let Some(step) = &failure.step {
                out.push_str(&format!(" at {step}"));
            }
            out.push_str(&format!(":\n  {}\n", failure.message.replace('\n', "\n  ")));
            if !failure.tail.is_empty() {
                out.push_str("  last lines of output:\n");
                for line in &failure.tail {
                    out.push_str(&format!("    | {line}\n"));
                }
            }
            if let Some(hint) = crate::hints::for_failed_step(&failure.message, &failure.tail) {
                out.push_str(&format!("  hint: {hint}\n"));
            }
            out.push_str(&format!("  full log: {}\n", failure.log.display()));
        }
    }
    out
}
