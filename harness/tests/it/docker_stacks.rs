//! jupyter/docker-stacks' start contract on base-notebook, for what needs a container of its
//! own per case: `docker run [--user U] [-e ...] IMAGE COMMAND` with the image's own ENTRYPOINT
//! (`tini -g -- start.sh`), which must apply the user settings and hooks to *any* command, then
//! run it. Each case is one short-lived container (testcontainers removes it). The server-side
//! half of the contract is in images/base-notebook/tests/server.yml, inherited by every
//! notebook image; docs/compatibility.md lists which check covers which point.

use rstest::rstest;
use testcontainers::core::wait::ExitWaitStrategy;
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{CopyTargetOptions, GenericImage, ImageExt};

/// How a case starts its container.
#[derive(Default)]
struct Start {
    user: Option<&'static str>,
    /// Extra groups (`--group-add`).
    groups: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// Files put into the container before it starts: path, contents, mode.
    files: &'static [(&'static str, &'static str, u32)],
}

/// What the container printed, and how it ended.
struct Ran {
    code: Option<i64>,
    stdout: String,
    stderr: String,
}

/// Runs `command` in a new base-notebook container started as `start` says, to its end.
async fn run(start: Start, command: &[&str]) -> Ran {
    let reference = harness::images::built(&["base-notebook"]).await.unwrap_or_else(|e| panic!("{e}")).remove(0);
    let (repository, tag) = reference.rsplit_once(':').unwrap();
    let image = GenericImage::new(repository, tag).with_wait_for(WaitFor::exit(ExitWaitStrategy::new()));
    let mut request = image.with_cmd(command.iter().copied());
    if let Some(user) = start.user {
        request = request.with_user(user);
    }
    for (name, value) in start.env {
        request = request.with_env_var(*name, *value);
    }
    for (path, contents, mode) in start.files {
        request = request.with_copy_to(CopyTargetOptions::new(*path).with_mode(*mode), contents.as_bytes().to_vec());
    }
    let groups: Vec<String> = start.groups.iter().map(|g| g.to_string()).collect();
    if !groups.is_empty() {
        request = request.with_host_config_modifier(move |config| config.group_add = Some(groups.clone()));
    }
    let container = request.start().await.unwrap_or_else(|e| panic!("{command:?} did not run: {e}"));
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    Ran {
        code: container.exit_code().await.unwrap(),
        stdout: text(container.stdout_to_vec().await.unwrap()),
        stderr: text(container.stderr_to_vec().await.unwrap()),
    }
}

/// Runs the case and checks its exit code and standard output; returns what it printed.
async fn expect(start: Start, command: &[&str], stdout: &str) -> Ran {
    let ran = run(start, command).await;
    let shown = format!("{command:?}\n  stdout: {}\n  stderr: {}", ran.stdout, ran.stderr);
    assert_eq!(ran.code, Some(0), "{shown}");
    assert_eq!(ran.stdout.trim_end(), stdout, "{shown}");
    ran
}

const ROOT: Option<&str> = Some("root");

#[rstest]
#[case::nb_uid_for_any_command(
    Start { user: ROOT, env: &[("NB_UID", "1010")], ..Default::default() },
    &["id"],
    "uid=1010(jovyan) gid=100(users) groups=100(users)"
)]
#[case::nb_gid_and_nb_group(
    Start { user: ROOT, env: &[("NB_UID", "1010"), ("NB_GID", "1020"), ("NB_GROUP", "team")], ..Default::default() },
    &["id"],
    "uid=1010(jovyan) gid=1020(team) groups=1020(team),100(users)"
)]
#[case::nb_user_renames_and_moves_home(
    Start { user: ROOT, env: &[("NB_USER", "alice")], ..Default::default() },
    &["sh", "-c", "id -un; echo $HOME; pwd"],
    "alice\n/home/alice\n/home/alice"
)]
#[case::root_triplet_runs_as_root_in_home_root(
    Start { user: ROOT, env: &[("NB_USER", "root"), ("NB_UID", "0"), ("NB_GID", "0")], ..Default::default() },
    &["sh", "-c", "id -u; echo $HOME; pwd; getent passwd root | cut -d: -f6"],
    "0\n/home/root\n/home/root\n/home/root"
)]
#[case::arbitrary_uid_gets_a_passwd_entry(
    Start { user: Some("1010"), ..Default::default() },
    &["id"],
    "uid=1010(jovyan) gid=0(root) groups=0(root)"
)]
#[case::arbitrary_uid_named_after_nb_user(
    Start { user: Some("1010"), groups: &["users"], env: &[("NB_USER", "kitten")], ..Default::default() },
    &["id"],
    "uid=1010(kitten) gid=0(root) groups=0(root),100(users)"
)]
#[case::grant_sudo_keeps_the_venv_on_sudos_path(
    Start { user: ROOT, env: &[("GRANT_SUDO", "yes")], ..Default::default() },
    &["sudo", "-n", "sh", "-c", "id -u; command -v pip"],
    "0\n/opt/venv/bin/pip"
)]
#[case::nb_umask_as_root(
    Start { user: ROOT, env: &[("NB_UMASK", "0002")], ..Default::default() },
    &["sh", "-c", "umask"],
    "0002"
)]
#[case::nb_umask_as_the_user(Start { env: &[("NB_UMASK", "0027")], ..Default::default() }, &["sh", "-c", "umask"], "0027")]
#[case::env_vars_to_unset_as_root(
    Start { user: ROOT, env: &[("DEMO_SECRET", "x"), ("OTHER", "y"), ("JUPYTER_ENV_VARS_TO_UNSET", "DEMO_SECRET,OTHER")], ..Default::default() },
    &["sh", "-c", "echo ${DEMO_SECRET-unset} ${OTHER-unset} ${JUPYTER_ENV_VARS_TO_UNSET-unset}"],
    "unset unset unset"
)]
#[case::env_vars_to_unset_as_the_user(
    Start { env: &[("DEMO_SECRET", "x"), ("JUPYTER_ENV_VARS_TO_UNSET", "DEMO_SECRET")], ..Default::default() },
    &["sh", "-c", "echo ${DEMO_SECRET-unset}"],
    "unset"
)]
#[tokio::test]
async fn start_sh_applies_the_settings_to_any_command(
    #[case] start: Start,
    #[case] command: &[&str],
    #[case] stdout: &str,
) {
    expect(start, command, stdout).await;
}

/// Started as a uid other than the image's, with none of the settings: no warnings. (An
/// arbitrary uid gets its passwd entry through group root, its home through the group users,
/// as docker-stacks asks; without either, start.sh warns and says how to fix it.)
#[rstest]
#[case::default_user(Start::default())]
#[case::arbitrary_uid_in_users(Start { user: Some("4242"), groups: &["users"], ..Default::default() })]
#[case::root(Start { user: ROOT, ..Default::default() })]
#[tokio::test]
async fn no_spurious_warnings(#[case] start: Start) {
    let ran = expect(start, &["true"], "").await;
    assert!(!ran.stderr.contains("WARNING"), "stderr: {}", ran.stderr);
}

#[tokio::test]
async fn settings_that_need_root_warn_when_not_root() {
    let env = &[("NB_UID", "1010"), ("GRANT_SUDO", "yes")];
    let ran = expect(Start { env, ..Default::default() }, &["id", "-u"], "1000").await;
    assert!(ran.stderr.contains("WARNING: NB_UID=1010 needs the container to start as root"), "{}", ran.stderr);
    assert!(ran.stderr.contains("WARNING: GRANT_SUDO=yes needs the container to start as root"), "{}", ran.stderr);
}

#[tokio::test]
async fn start_sh_named_again_in_the_command_runs_it_once() {
    let env = &[("NB_UID", "1010")];
    let ran = expect(Start { user: ROOT, env, ..Default::default() }, &["start.sh", "id", "-u"], "1010").await;
    assert!(ran.stderr.contains("start.sh is the ENTRYPOINT already"), "{}", ran.stderr);
}

#[tokio::test]
async fn no_command_runs_bash() {
    // start.sh without a command runs bash (here reading its commands from a pipe).
    let command = &["sh", "-c", "echo 'echo \"$0\" ran' | env -u _START_SH_EXECUTED start.sh"];
    expect(Start::default(), command, "bash ran").await;
}

/// Hooks run for any command: start-notebook.d as the starting user, before-notebook.d just
/// before the command (as root when started as root); `.sh` hooks are sourced, executables
/// run, other files skipped; a failing hook is logged and the start goes on.
#[rstest]
#[case::as_root(ROOT, "start 0\nbefore 0 hello\ncommand 1000 hello")]
#[case::as_the_user(None, "start 1000\nbefore 1000 hello\ncommand 1000 hello")]
#[tokio::test]
async fn hooks_run_for_any_command_and_failures_do_not_stop_it(
    #[case] user: Option<&'static str>,
    #[case] stdout: &str,
) {
    const HOOKS: &[(&str, &str, u32)] = &[
        ("/usr/local/bin/start-notebook.d/10-who.sh", "echo \"start $(id -u)\" >> /tmp/hooks.log\n", 0o644),
        ("/usr/local/bin/before-notebook.d/10-fails.sh", "export HOOK_SAYS=hello\nfalse\n", 0o644),
        ("/usr/local/bin/before-notebook.d/20-fails", "#!/bin/sh\nexit 3\n", 0o755),
        ("/usr/local/bin/before-notebook.d/30-plain", "not a hook\n", 0o644),
        (
            "/usr/local/bin/before-notebook.d/40-who.sh",
            "echo \"before $(id -u) $HOOK_SAYS\" >> /tmp/hooks.log\n",
            0o644,
        ),
    ];
    let start = Start { user, files: HOOKS, ..Default::default() };
    let command = &["sh", "-c", "cat /tmp/hooks.log; echo \"command $(id -u) $HOOK_SAYS\""];
    let ran = expect(start, command, stdout).await;
    for line in [
        "10-fails.sh has failed (exit code 1), continuing execution",
        "20-fails has failed (exit code 3), continuing execution",
        "Ignoring non-executable: /usr/local/bin/before-notebook.d/30-plain",
    ] {
        assert!(ran.stderr.contains(line), "stderr should contain {line:?}: {}", ran.stderr);
    }
}
