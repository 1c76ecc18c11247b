//! The security check against the real Debian security archive, from inside real Debian
//! images: a fixture image built on the stack's Debian base with one package deliberately held
//! at the main archive's older version is reported with exactly that package, which the base
//! itself does not have pending; the spec's threshold turns it into a failure that names it.

use std::time::Duration;

use xtask::build::BuildOptions;
use xtask::engine::Engine;
use xtask::plan::Variants;
use xtask::scheduler::Outcome;
use xtask::supply::collect;

use crate::base_recipe::real_base;
use crate::common::engine::EngineStack;

const ARCHIVE: &str = "http://deb.debian.org/debian-security";

/// Small packages a minbase lacks; the first with an older version in the main archive than in
/// the security archive is the one to pin.
const CANDIDATES: &str = "libexpat1 libxml2 libtiff6 libpng16-16 libsqlite3-0 libcurl4 libgnutls30 openssl";

/// `(package, main archive version, security archive version)` of the first candidate that has
/// a security update over the main archive, asked inside `base`.
async fn package_with_a_security_update(engine: &Engine, base: &str) -> (String, String, String) {
    let script = format!(
        r#"set -e; d=/tmp/pick; mkdir -p $d/lists/partial; . /etc/os-release
{{ cat /etc/apt/sources.list; echo "deb {ARCHIVE} ${{VERSION_CODENAME}}-security main"; }} > $d/sources.list
O="-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$d/lists -o Debug::NoLocking=1 -o APT::Sandbox::User=root"
apt-get $O -qq update
for p in {CANDIDATES}; do dpkg -s $p >/dev/null 2>&1 || apt-cache $O madison $p; done"#
    );
    let outputs = engine.run_in_image_as(base, Some("0"), &[script], Duration::from_secs(300)).await.unwrap();
    let text = &outputs[0].stdout;
    assert_eq!(outputs[0].exit_code, Some(0), "asking the archives failed:\n{text}\n{}", outputs[0].stderr);
    for package in CANDIDATES.split_whitespace() {
        let versions: Vec<(String, bool)> = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split('|').map(str::trim).collect();
                (fields.len() == 3 && fields[0] == package)
                    .then(|| (fields[1].to_string(), fields[2].contains("-security")))
            })
            .collect();
        let secure = versions.iter().find(|(_, security)| *security);
        let main = versions.iter().find(|(_, security)| !*security);
        if let (Some((new, _)), Some((old, _))) = (secure, main) {
            if new != old {
                return (package.to_string(), old.clone(), new.clone());
            }
        }
    }
    panic!("none of {CANDIDATES} has a security update over the main archive today; add a candidate:\n{text}");
}

#[tokio::test]
async fn a_package_held_at_an_old_version_is_reported_from_the_real_security_archive() {
    let (_, _, made) = real_base().await;
    let engine = Engine::connect().await.unwrap();
    let (package, old, new) = package_with_a_security_update(&engine, &made.reference).await;
    eprintln!("held {package} at {old}; the security archive has {new}");
    let stack = EngineStack::with_base(&made.reference);
    stack.stack.write(
        "images/base/Dockerfile",
        &format!(
            "ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends {package}={old} && rm -rf /var/lib/apt/lists/* && echo base > /base.txt\n"
        ),
    );
    let report = stack.build(Variants::Default, BuildOptions::default()).await;
    assert!(report.rows.iter().all(|row| matches!(row.outcome, Outcome::Done(_))), "{report:?}");
    let image = format!("{}:build", stack.repository("base"));
    let image_id = engine.image(&image).await.unwrap().unwrap().id.unwrap();

    let held = collect::security(&engine, "base", &image_id, ARCHIVE).await.unwrap();
    assert_eq!(held.skipped, None, "{held:?}");
    assert!(held.suite.as_deref().is_some_and(|s| s.ends_with("-security")), "{held:?}");
    let found = held
        .pending
        .iter()
        .find(|p| p.package == package)
        .unwrap_or_else(|| panic!("{package} not reported: {held:?}"));
    assert_eq!((found.installed.as_str(), found.available.as_str()), (old.as_str(), new.as_str()));
    let plain = collect::security(&engine, "debian", &made.id, ARCHIVE).await.unwrap();
    assert!(!plain.pending.iter().any(|p| p.package == package), "the base does not have it: {plain:?}");
    assert_eq!(held.pending.len(), plain.pending.len() + 1, "exactly one more: {held:?}\n{plain:?}");

    let limits =
        |max_pending| xtask::spec::Security { archive: ARCHIVE.into(), max_pending, max_vulnerabilities: None };
    assert!(held.verdict(&limits(held.pending.len())).is_ok(), "at the threshold: passes");
    let failed = held.verdict(&limits(plain.pending.len())).unwrap_err();
    assert!(failed.contains(&format!("{package} {old} -> {new}")), "{failed}");
}
