//! `cargo xtask refresh` run as the scheduled workflow runs it, on a copy of the fixture stack:
//! the spec's text keeps everything but the refresh keys, the spec still loads with the new key,
//! `--check` and unknown bases fail with their exit codes and leave the file alone. And the
//! edit on the real stack's spec changes one line.

use std::path::Path;
use std::process::{Command, Output};

use xtask::spec::Spec;

use crate::common::Stack;

fn refresh(stack: &Stack, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--spec")
        .arg(stack.spec_file())
        .arg("refresh")
        .args(args)
        .output()
        .unwrap()
}

#[track_caller]
fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[track_caller]
fn fails(output: &Output, code: i32, says: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    for words in says {
        assert!(stderr.contains(words), "expected `{words}` in:\n{stderr}");
    }
}

fn refresh_key(stack: &Stack) -> Option<String> {
    let spec = Spec::load(&stack.spec_file()).unwrap_or_else(|error| panic!("{error}"));
    spec.bases["debian"].refresh.clone()
}

#[test]
fn adds_then_replaces_the_key_of_every_base_with_a_recipe() {
    let stack = Stack::new();
    let original = stack.spec_text();
    let spec = stack.spec_file().display().to_string();

    let added = stdout(&refresh(&stack, &["--key", "2026-12-01"]));
    assert_eq!(added, format!("{spec}:15: bases.debian.refresh: (none) -> \"2026-12-01\"\n"));
    let expected = original.replacen("  debian:\n    image:", "  debian:\n    refresh: \"2026-12-01\"\n    image:", 1);
    assert_eq!(stack.spec_text(), expected);
    assert_eq!(refresh_key(&stack).as_deref(), Some("2026-12-01"));

    let replaced = stdout(&refresh(&stack, &["debian", "--key", "2026-12-08"]));
    assert_eq!(replaced, format!("{spec}:15: bases.debian.refresh: \"2026-12-01\" -> \"2026-12-08\"\n"));
    assert_eq!(stack.spec_text(), expected.replace("2026-12-01", "2026-12-08"));

    let again = stdout(&refresh(&stack, &["--key", "2026-12-08"]));
    assert_eq!(again, format!("{spec}:15: bases.debian.refresh is \"2026-12-08\" already\n"));
}

#[test]
fn the_default_key_is_todays_date_in_utc() {
    let stack = Stack::new();
    let today = || {
        let date = time::OffsetDateTime::now_utc().date();
        format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
    };
    let before = today();
    stdout(&refresh(&stack, &[]));
    let key = refresh_key(&stack).unwrap();
    assert!(key == before || key == today(), "the key is {key}, the date {before}");
}

#[test]
fn check_writes_nothing_and_fails_on_another_key() {
    let stack = Stack::new();
    stdout(&refresh(&stack, &["--key", "2026-12-01"]));
    let text = stack.spec_text();

    let same = stdout(&refresh(&stack, &["--check", "--key", "2026-12-01"]));
    assert!(same.ends_with("is \"2026-12-01\" already\n"), "{same}");
    let other = refresh(&stack, &["--check", "--key", "2027-01-05"]);
    fails(
        &other,
        3,
        &[
            "spec.yml:15:1: error[invalid-value]: `bases.debian.refresh` is \"2026-12-01\", not \"2027-01-05\"",
            "hint: set it: `cargo xtask refresh debian --key 2027-01-05`",
        ],
    );
    assert!(String::from_utf8_lossy(&other.stdout).contains("would be \"2027-01-05\""));
    assert_eq!(stack.spec_text(), text);
}

#[test]
fn refuses_unknown_bases_and_bad_keys_and_leaves_the_spec_alone() {
    let stack = Stack::new();
    let text = stack.spec_text();
    fails(
        &refresh(&stack, &["debain", "--key", "k"]),
        3,
        &["error[unknown-image]: unknown base `debain`", "did you mean `debian`?", "the stack's bases are: debian"],
    );
    fails(&refresh(&stack, &["app", "--key", "k"]), 3, &["`app` is an image of the stack, not a base"]);
    fails(&refresh(&stack, &["--key", "next week"]), 2, &["a refresh key is 1 to 64 letters"]);
    assert_eq!(stack.spec_text(), text);
}

#[test]
fn the_real_spec_changes_by_one_line() {
    let file = xtask::paths::default_spec();
    let text = std::fs::read_to_string(&file).unwrap();
    let spec = Spec::load(&file).unwrap_or_else(|error| panic!("{error}"));
    let bases: Vec<&str> = spec.bases.values().filter(|base| base.recipe.is_some()).map(|b| b.name.as_str()).collect();
    assert!(!bases.is_empty(), "the real stack has no base with a recipe");
    let edit = xtask::refresh::set_refresh(Path::new("images/spec.yml"), &text, &bases, "2099-01-01")
        .unwrap_or_else(|error| panic!("{error}"));
    let (old, new): (Vec<&str>, Vec<&str>) = (text.lines().collect(), edit.text.lines().collect());
    assert_eq!(old.len(), new.len(), "every base of the real spec has a refresh line already");
    let differing: Vec<(&&str, &&str)> = old.iter().zip(&new).filter(|(a, b)| a != b).collect();
    assert_eq!(differing.len(), bases.len(), "{differing:#?}");
    for (before, after) in differing {
        assert!(before.trim_start().starts_with("refresh:") && after.trim() == "refresh: \"2099-01-01\"", "{after}");
    }
}
