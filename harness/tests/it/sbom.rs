//! The SBOM of the real base-notebook: every package that `dpkg-query` and `pip list` report
//! inside the image is in it with the same version, and nothing else is.

use std::collections::BTreeSet;
use std::time::Duration;

use xtask::engine::Engine;
use xtask::supply::collect;
use xtask::supply::inventory::normalize_python_name;
use xtask::supply::sbom::{cyclonedx, Subject};

/// `(ecosystem, name, version)` read from lines of `name<sep>version`.
fn listed(ecosystem: &str, text: &str, separator: &str) -> BTreeSet<(String, String, String)> {
    text.lines()
        .filter_map(|line| line.trim().split_once(separator))
        .map(|(name, version)| {
            let name = if ecosystem == "pypi" { normalize_python_name(name) } else { name.to_string() };
            (ecosystem.to_string(), name, version.trim().to_string())
        })
        .collect()
}

#[tokio::test]
async fn base_notebooks_sbom_lists_exactly_what_dpkg_and_pip_report() {
    let image = harness::images::built(&["base-notebook"]).await.unwrap_or_else(|e| panic!("{e}")).remove(0);
    let engine = Engine::connect().await.unwrap();
    let commands = ["dpkg-query --show --showformat='${Package} ${Version}\\n'", "pip list --format=freeze"];
    let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
    let outputs = engine.run_in_image(&image, &commands, Duration::from_secs(120)).await.unwrap();
    let mut expected = listed("deb", &outputs[0].stdout, " ");
    expected.extend(listed("pypi", &outputs[1].stdout, "=="));
    assert!(expected.len() > 200, "dpkg and pip list little: {expected:?}");

    let inventory = collect::inventory(&engine, &image).await.unwrap();
    let subject = Subject {
        repository: "ghcr.io/example-org/notebooks/base-notebook".into(),
        digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        node: "base-notebook".into(),
        created: "2026-11-22T00:00:00Z".into(),
    };
    let document: serde_json::Value = serde_json::from_str(&cyclonedx(&inventory, &subject).unwrap()).unwrap();
    let found: BTreeSet<(String, String, String)> = document["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let purl = c["purl"].as_str().unwrap();
            let ecosystem = purl.trim_start_matches("pkg:").split('/').next().unwrap().to_string();
            let name = c["name"].as_str().unwrap();
            let name = if ecosystem == "pypi" { normalize_python_name(name) } else { name.to_string() };
            (ecosystem, name, c["version"].as_str().unwrap().to_string())
        })
        .collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the SBOM: {missing:?}\nnot reported by dpkg or pip: {extra:?}"
    );
    eprintln!(
        "base-notebook: {} packages ({} Debian, {} Python), the same in the SBOM",
        found.len(),
        inventory.debian.len(),
        inventory.python.len()
    );
}
