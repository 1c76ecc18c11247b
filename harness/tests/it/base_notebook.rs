//! Rust-level tests of base-notebook, for what the YAML format cannot say: the same image
//! started several ways, with testcontainers (containers are removed when dropped).

use rstest::rstest;
use testcontainers::core::{ExecCommand, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

/// `(repository, tag)` of base-notebook as built here.
async fn base_notebook() -> (String, String) {
    let reference = harness::images::built(&["base-notebook"]).await.unwrap_or_else(|e| panic!("{e}")).remove(0);
    let (repository, tag) = reference.rsplit_once(':').unwrap();
    (repository.to_string(), tag.to_string())
}

#[rstest]
#[case::default_user(None, "1000")]
#[case::as_root(Some("0"), "0")]
#[case::another_uid(Some("4242"), "4242")]
#[tokio::test]
async fn starts_as_the_user_asked(#[case] user: Option<&str>, #[case] uid: &str) {
    let (repository, tag) = base_notebook().await;
    let image = GenericImage::new(repository, tag).with_wait_for(WaitFor::Nothing).with_entrypoint("sleep");
    let mut request = image.with_cmd(["300"]).with_env_var("LANG", "C.UTF-8");
    if let Some(user) = user {
        request = request.with_user(user);
    }
    let container = request.start().await.unwrap();
    let mut result = container.exec(ExecCommand::new(["id", "-u"])).await.unwrap();
    let stdout = String::from_utf8(result.stdout_to_vec().await.unwrap()).unwrap();
    assert_eq!(stdout.trim(), uid);
    // Python works for whoever runs it.
    let mut python = container.exec(ExecCommand::new(["python", "-c", "import sys; print(sys.prefix)"])).await.unwrap();
    assert_eq!(String::from_utf8(python.stdout_to_vec().await.unwrap()).unwrap().trim(), "/opt/venv");
}
