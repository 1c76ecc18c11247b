//! Promotion: every image of the stack gets tag `to` on the digest its tag `from` names, through
//! the registry's API alone (no pull, no push: a manifest PUT of the bytes already there, so
//! the digest is the same by construction). All or nothing by check: nothing moves when an
//! image lacks `from`, or when `to` already names another digest (unless forced). Documents
//! travel with the digest, so a promoted tag reaches them as the source tag did; an image that
//! lacks some (released before they existed, or deleted) gets them from the attestor before
//! any tag moves, and nothing moves when that is not possible.

use super::attach::{self, ArtifactStore, Attachment, Attestor};
use super::publish::ManifestStore;
use super::{Promotion, ReleaseError};
use crate::registry::Manifest;

/// One repository to promote in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    /// `host/path`.
    pub repository: String,
    /// The repository's path under the registry.
    pub path: String,
}

/// What to promote.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub force: bool,
    pub dry_run: bool,
    /// `host[:port]`, for messages.
    pub registry: &'a str,
}

/// Moves `to` to what `from` names in every target, or explains why nothing moved.
pub async fn promote(
    store: &(impl ManifestStore + ArtifactStore),
    attestor: &impl Attestor,
    targets: &[Target],
    request: Request<'_>,
) -> Result<Vec<Promotion>, ReleaseError> {
    let Request { from, to, .. } = request;
    for tag in [from, to] {
        if let Err(why) = crate::reference::check_tag(tag) {
            return Err(ReleaseError::InvalidTag { tag: tag.to_string(), why });
        }
    }
    let mut found = Vec::new();
    for target in targets {
        let source = store.manifest(&target.path, from).await?;
        let existing = store.manifest(&target.path, to).await?;
        found.push((source, existing));
    }
    let missing: Vec<String> = targets
        .iter()
        .zip(&found)
        .filter(|(_, (source, _))| source.is_none())
        .map(|(target, _)| target.node.clone())
        .collect();
    if !missing.is_empty() {
        return Err(ReleaseError::PromoteIncomplete {
            from: from.to_string(),
            missing,
            total: targets.len(),
            registry: request.registry.to_string(),
        });
    }
    let taken: Vec<String> = targets
        .iter()
        .zip(&found)
        .filter_map(|(target, (source, existing))| match (source, existing) {
            (Some(source), Some(existing)) if source.digest != existing.digest => {
                Some(format!("{}: `{to}` is {}, `{from}` is {}", target.node, existing.digest, source.digest))
            }
            _ => None,
        })
        .collect();
    if !taken.is_empty() && !request.force {
        return Err(ReleaseError::PromoteTaken { to: to.to_string(), taken });
    }
    let sources: Vec<Option<&Manifest>> = found.iter().map(|(source, _)| source.as_ref()).collect();
    let attached = if request.dry_run {
        vec![Vec::new(); targets.len()]
    } else {
        attach_missing(store, attestor, targets, &sources).await?
    };
    let mut promotions = Vec::new();
    for ((target, (source, existing)), attached) in targets.iter().zip(found).zip(attached) {
        let Some(source) = source else { continue };
        let status = if existing.is_some_and(|existing| existing.digest == source.digest) {
            "already there"
        } else if request.dry_run {
            "would move"
        } else {
            store.put_manifest(&target.path, to, &source).await?;
            "moved"
        };
        promotions.push(Promotion {
            node: target.node.clone(),
            repository: target.repository.clone(),
            from: from.to_string(),
            to: to.to_string(),
            digest: source.digest.clone(),
            status: status.into(),
            attached,
        });
    }
    Ok(promotions)
}

/// Attaches what each target's source lacks, before any tag moves: what was attached now, per
/// target; refused, with every image that cannot have its documents, when some cannot.
async fn attach_missing(
    store: &(impl ManifestStore + ArtifactStore),
    attestor: &impl Attestor,
    targets: &[Target],
    sources: &[Option<&Manifest>],
) -> Result<Vec<Vec<Attachment>>, ReleaseError> {
    let mut attached = vec![Vec::new(); targets.len()];
    let mut unattached = Vec::new();
    for (slot, (target, source)) in attached.iter_mut().zip(targets.iter().zip(sources)) {
        let Some(source) = source else { continue };
        match attach_one(store, attestor, target, source).await {
            Ok(list) => *slot = list.into_iter().filter(|a| a.status == "attached").collect(),
            Err(ReleaseError::Attest { node, reason }) => unattached.push(format!("{node}: {reason}")),
            Err(other) => return Err(other),
        }
    }
    if unattached.is_empty() {
        Ok(attached)
    } else {
        Err(ReleaseError::PromoteUnattached { missing: unattached })
    }
}

/// Attaches what `source` lacks: an image's documents; for an image index, each platform
/// manifest's documents (node `image/arch`) and the index's own signature.
async fn attach_one(
    store: &(impl ManifestStore + ArtifactStore),
    attestor: &impl Attestor,
    target: &Target,
    source: &Manifest,
) -> Result<Vec<Attachment>, ReleaseError> {
    if source.media_type != super::index::INDEX_MEDIA_TYPE {
        return attach::attach(store, attestor, &target.node, &target.repository, &target.path, source).await;
    }
    let mut out = Vec::new();
    for (platform, digest) in super::index::index_platforms(&source.bytes) {
        let arch = crate::platform::Platform::parse(&platform).map(|p| p.suffix()).unwrap_or(platform);
        let node = format!("{}/{arch}", target.node);
        let Some(manifest) = store.manifest(&target.path, &digest).await? else {
            let reason = format!("the index names {digest}, which is not in {}", target.repository);
            return Err(ReleaseError::Attest { node, reason });
        };
        out.extend(attach::attach(store, attestor, &node, &target.repository, &target.path, &manifest).await?);
    }
    out.extend(attach::sign(store, attestor, &target.node, &target.repository, &target.path, source).await?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::publish::fakes::{manifest_of, Failure, World};
    use super::*;

    fn targets() -> Vec<Target> {
        ["base", "app"]
            .iter()
            .map(|name| Target {
                node: name.to_string(),
                repository: format!("reg/ns/{name}"),
                path: format!("ns/{name}"),
            })
            .collect()
    }

    fn request(force: bool, dry_run: bool) -> Request<'static> {
        Request { from: "1.0-main", to: "stable", force, dry_run, registry: "reg" }
    }

    fn released() -> World {
        let world = World::default();
        world.put("ns/base:1.0-main", manifest_of("sha256:base"));
        world.put("ns/app:1.0-main", manifest_of("sha256:app"));
        world
    }

    fn moved(world: &World) -> Vec<String> {
        world.log().into_iter().filter(|entry| entry.starts_with("put ") && !entry.contains(":sha256")).collect()
    }

    #[tokio::test]
    async fn documents_an_image_lacks_are_attached_before_its_tag_and_only_then() {
        let world = released();
        let promotions = promote(&world, &world, &targets(), request(false, false)).await.unwrap();
        let log = world.log();
        let attested = log.iter().rposition(|e| e.starts_with("attest ")).unwrap();
        let first_tag = log.iter().position(|e| e == "put ns/base:stable").unwrap();
        assert!(attested < first_tag, "{log:?}");
        assert_eq!(promotions[0].attached.len(), 2);
        let before = world.log().len();
        let again = promote(&world, &world, &targets(), request(false, false)).await.unwrap();
        assert!(!world.log()[before..].iter().any(|e| e.starts_with("attest ") || e.starts_with("blob ")));
        assert!(again.iter().all(|p| p.attached.is_empty()));
    }

    #[tokio::test]
    async fn an_image_whose_documents_cannot_be_attached_moves_nothing() {
        let world = released();
        world.attestor_fails.store(true, std::sync::atomic::Ordering::SeqCst);
        let error = promote(&world, &world, &targets(), request(false, false)).await.unwrap_err();
        assert!(matches!(&error, ReleaseError::PromoteUnattached { missing } if missing.len() == 2), "{error}");
        assert_eq!(error.exit_code(), crate::error::ExitCode::Refused);
        assert!(moved(&world).is_empty());
    }

    #[tokio::test]
    async fn moves_every_tag_to_the_same_digest() {
        let world = released();
        let promotions = promote(&world, &world, &targets(), request(false, false)).await.unwrap();
        assert_eq!(moved(&world), ["put ns/base:stable", "put ns/app:stable"]);
        assert_eq!(world.get("ns/app:stable"), world.get("ns/app:1.0-main"));
        assert!(promotions.iter().all(|p| p.status == "moved"));
        let again = promote(&world, &world, &targets(), request(false, false)).await.unwrap();
        assert!(again.iter().all(|p| p.status == "already there"), "{again:?}");
    }

    #[tokio::test]
    async fn an_image_without_the_source_tag_moves_nothing() {
        let world = World::default();
        world.put("ns/base:1.0-main", manifest_of("sha256:base"));
        let error = promote(&world, &world, &targets(), request(false, false)).await.unwrap_err();
        assert!(matches!(&error, ReleaseError::PromoteIncomplete { missing, .. } if missing == &["app"]), "{error}");
        assert!(moved(&world).is_empty());
    }

    #[tokio::test]
    async fn a_target_naming_another_digest_moves_nothing_unless_forced() {
        let world = released();
        world.put("ns/app:stable", manifest_of("sha256:old"));
        let error = promote(&world, &world, &targets(), request(false, false)).await.unwrap_err();
        assert!(matches!(error, ReleaseError::PromoteTaken { .. }));
        assert!(moved(&world).is_empty());
        promote(&world, &world, &targets(), request(true, false)).await.unwrap();
        assert_eq!(world.get("ns/app:stable"), world.get("ns/app:1.0-main"));
    }

    #[tokio::test]
    async fn a_dry_run_moves_nothing() {
        let world = released();
        let promotions = promote(&world, &world, &targets(), request(false, true)).await.unwrap();
        assert!(moved(&world).is_empty());
        assert!(promotions.iter().all(|p| p.status == "would move"));
    }

    #[tokio::test]
    async fn a_registry_failure_while_reading_moves_nothing() {
        let world = released();
        world.fail_at(2, Failure::Unreachable);
        assert!(matches!(
            promote(&world, &world, &targets(), request(false, false)).await,
            Err(ReleaseError::Registry(_))
        ));
        assert!(moved(&world).is_empty());
    }

    #[rstest::rstest]
    #[case("stable:x")]
    #[case("")]
    #[tokio::test]
    async fn refuses_tags_docker_would_refuse(#[case] tag: &str) {
        let world = released();
        let request = Request { to: tag, ..request(false, false) };
        assert!(matches!(promote(&world, &world, &targets(), request).await, Err(ReleaseError::InvalidTag { .. })));
    }

    #[tokio::test]
    async fn an_index_keeps_its_digest_and_its_platforms_get_the_documents_they_lack() {
        let world = World::default();
        world.signs.store(true, std::sync::atomic::Ordering::SeqCst);
        let (amd64, arm64) = (manifest_of("sha256:base-amd64"), manifest_of("sha256:base-arm64"));
        for manifest in [&amd64, &arm64] {
            world.put(&format!("ns/base:{}", manifest.digest), manifest.clone());
        }
        let platforms = [
            crate::platform::Platform::parse("linux/amd64").unwrap(),
            crate::platform::Platform::parse("linux/arm64").unwrap(),
        ];
        let index = super::super::index::image_index(&[(&platforms[0], &amd64), (&platforms[1], &arm64)]);
        world.put("ns/base:1.0-main", index.clone());
        let target = Target { node: "base".into(), repository: "reg/ns/base".into(), path: "ns/base".into() };
        let promotions = promote(&world, &world, &[target], request(false, false)).await.unwrap();
        assert_eq!(world.get("ns/base:stable").unwrap().digest, index.digest, "the tag names the same index");
        let attested: Vec<String> = world.log().into_iter().filter(|e| e.starts_with("attest ")).collect();
        assert_eq!(
            attested,
            [
                "attest base/amd64 sbom,provenance,signature",
                "attest base/arm64 sbom,provenance,signature",
                "attest base signature"
            ]
        );
        assert_eq!(promotions[0].attached.len(), 7);
        let attested = world.log().iter().rposition(|e| e.starts_with("attest ")).unwrap();
        assert!(attested < world.log().iter().position(|e| e == "put ns/base:stable").unwrap());
    }
}
