//! `cargo xtask refresh`: sets bases' `refresh` keys in the spec, which makes those bases again
//! and rebuilds everything on them (security updates, Debian point releases) through a
//! reviewable one-line change. The scheduled workflow `.github/workflows/refresh-base.yml` runs
//! it and opens a pull request. The edit is [`crate::refresh::set_refresh`]; this module picks
//! the bases and the key, writes the file and prints what changed.

use std::io::Write;
use std::path::Path;

use clap::Args;

use super::Cli;
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics, Location};
use crate::error::Error;
use crate::refresh::{set_refresh, Change};
use crate::spec::Spec;

#[derive(Debug, Args)]
pub struct Refresh {
    /// Bases to refresh [default: every base that has a recipe]
    #[arg(value_name = "BASE")]
    pub bases: Vec<String>,
    /// The new key [default: today's date in UTC, YYYY-MM-DD]
    #[arg(long, value_name = "KEY", value_parser = parse_key)]
    pub key: Option<String>,
    /// Write nothing; fail (exit 3) when a key differs from KEY, naming the command that sets it
    #[arg(long)]
    pub check: bool,
}

impl Refresh {
    pub fn run(&self, cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
        let path = cli.spec_path();
        let spec = cli.load_spec()?;
        let bases = self.chosen(&spec)?;
        if bases.is_empty() {
            writeln!(out, "no base in {} has a recipe; name the bases to refresh", path.display())?;
            return Ok(());
        }
        let key = self.key.clone().unwrap_or_else(today);
        let read_error = |source| Error::Io { what: format!("reading {}", path.display()), source };
        let text = std::fs::read_to_string(&path).map_err(read_error)?;
        let edit = set_refresh(&path, &text, &bases, &key)?;
        for change in &edit.changes {
            writeln!(out, "{}", describe(&path, change, self.check))?;
        }
        if self.check {
            return check(&path, &edit.changes);
        }
        if edit.text != text {
            let write_error = |source| Error::Io { what: format!("writing {}", path.display()), source };
            std::fs::write(&path, &edit.text).map_err(write_error)?;
        }
        Ok(())
    }

    /// The bases named on the command line (every one must exist), else those with a recipe.
    fn chosen<'a>(&'a self, spec: &'a Spec) -> Result<Vec<&'a str>, Diagnostics> {
        if self.bases.is_empty() {
            return Ok(spec
                .bases
                .values()
                .filter(|base| base.recipe.is_some())
                .map(|base| base.name.as_str())
                .collect());
        }
        let unknown: Vec<Diagnostic> = self
            .bases
            .iter()
            .filter(|name| !spec.bases.contains_key(*name))
            .map(|name| unknown_base(spec, name))
            .collect();
        if unknown.is_empty() {
            Ok(self.bases.iter().map(String::as_str).collect())
        } else {
            Err(Diagnostics(unknown))
        }
    }
}

fn unknown_base(spec: &Spec, name: &str) -> Diagnostic {
    let names: Vec<&str> = spec.bases.keys().map(String::as_str).collect();
    let mut hint = format!("the stack's bases are: {}", names.join(", "));
    if spec.images.contains_key(name) {
        hint = format!("`{name}` is an image of the stack, not a base; {hint}");
    } else if let Some(best) = did_you_mean(name, names.iter().copied()) {
        hint = format!("did you mean `{best}`? {hint}");
    }
    Diagnostic::new(Code::UnknownImage, None, format!("unknown base `{name}`")).with_hint(hint)
}

fn describe(path: &Path, change: &Change, check: bool) -> String {
    let before = change.before.as_deref().map_or_else(|| "(none)".to_string(), |key| format!("\"{key}\""));
    let place = format!("{}:{}: bases.{}.refresh", path.display(), change.line, change.base);
    match (change.changed(), check) {
        (false, _) => format!("{place} is {before} already"),
        (true, false) => format!("{place}: {before} -> \"{}\"", change.after),
        (true, true) => format!("{place}: {before}, would be \"{}\"", change.after),
    }
}

/// `--check`: every key asked for must be the given one.
fn check(path: &Path, changes: &[Change]) -> Result<(), Error> {
    let stale: Vec<Diagnostic> = changes
        .iter()
        .filter(|change| change.changed())
        .map(|change| {
            let before = change.before.as_deref().map_or_else(|| "not set".to_string(), |key| format!("\"{key}\""));
            Diagnostic::new(
                Code::InvalidValue,
                Some(Location::new(path, change.line, 1)),
                format!("`bases.{}.refresh` is {before}, not \"{}\"", change.base, change.after),
            )
            .with_hint(format!("set it: `cargo xtask refresh {} --key {}`", change.base, change.after))
        })
        .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(stale).into())
    }
}

/// Today's date in UTC, `YYYY-MM-DD`: the default key, as the scheduled workflow writes it.
fn today() -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// A key is written into YAML and read by people: letters, digits and `.-_:+`.
fn parse_key(key: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_:+".contains(c);
    if !key.is_empty() && key.len() <= 64 && key.chars().all(allowed) {
        Ok(key.to_string())
    } else {
        Err("a refresh key is 1 to 64 letters, digits and `.-_:+`, such as a date (2026-11-30)".into())
    }
}
