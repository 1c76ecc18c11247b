//! The release protocol, over narrow interfaces: [`PinPusher`] (what the engine does: push
//! an image's blobs and manifest under its content-addressed pin), [`ManifestStore`] (what
//! the registry's API does: read a manifest, put it under another tag), and for attachments
//! [`ArtifactStore`] and [`Attestor`] (see [`super::attach`]).
//!
//! **The property it keeps: a tag never names an incomplete image, nor one without its
//! documents.** Every pin is pushed (unless the registry has it already, as after fanned-out CI
//! build jobs) and its manifest read back, then every image gets its attachments (SBOM,
//! provenance, signature: what it lacks); the image index of an image built for several
//! platforms is written (by its digest, untagged) only once every platform's pin is read back,
//! attached, and its configuration says that platform, and it gets its own signature; all this
//! before the first human tag moves. A tag is then a manifest PUT of bytes the registry already
//! holds (the index, for such an image), so promotion keeps digests by construction. A failure
//! at any point before the tags leaves no tag moved; a re-run resumes (the engine skips blobs
//! the registry has). Transient push failures are tried again with backoff.

use std::future::Future;
use std::time::Duration;

pub use super::attach::{ArtifactStore, Attachment, Attestor};
use super::ReleaseError;
use crate::engine::EngineError;
use crate::platform::Platform;
use crate::registry::{Manifest, RegistryError};

/// Pushes an image under its pin: blobs first, then the manifest (the engine's push).
pub trait PinPusher {
    /// Pushes image `image_id` as `repository:pin`.
    fn push_pin(
        &self,
        image_id: &str,
        repository: &str,
        pin: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
}

/// Reads and writes manifests in the registry (its HTTP API). `path` is the repository's path
/// under the registry (`org/notebooks/base-notebook`).
pub trait ManifestStore {
    fn manifest(
        &self,
        path: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<Manifest>, RegistryError>> + Send;
    /// Blob `digest` of `path` (an image configuration).
    fn blob(&self, path: &str, digest: &str) -> impl Future<Output = Result<Option<Vec<u8>>, RegistryError>> + Send;
    /// Puts `manifest` under `path:tag` (or under its own digest); returns the digest the
    /// registry reports.
    fn put_manifest(
        &self,
        path: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> impl Future<Output = Result<String, RegistryError>> + Send;
}

/// How often a transient push failure is tried again, and the first pause (doubled each time).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub retries: u32,
    pub first: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { retries: crate::registry::RETRIES, first: crate::registry::FIRST_BACKOFF }
    }
}

/// One image to release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub node: String,
    pub image_id: String,
    /// `host/path`: where it goes.
    pub repository: String,
    /// The repository's path under the registry.
    pub path: String,
    /// `inputs-...`.
    pub pin: String,
    /// Empty for a platform of an image index: its tags go on the index.
    pub tags: Vec<String>,
}

/// An image index to write over some of a release's pushes: the platforms of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPush {
    /// `image` or `image@variant`.
    pub node: String,
    pub repository: String,
    pub path: String,
    /// Each platform, in the stack's order, with the position of its push among the release's.
    pub platforms: Vec<(Platform, usize)>,
    pub tags: Vec<String>,
}

impl Push {
    pub fn pin_reference(&self) -> String {
        format!("{}:{}", self.repository, self.pin)
    }
}

/// An image released: the digest its pin and every tag name (an index's: its tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub node: String,
    pub repository: String,
    pub digest: String,
    /// The pin first, then the tags; an index's tags alone.
    pub tags: Vec<String>,
    /// Its documents in the registry (an index: its signature, when there is a key).
    pub attachments: Vec<Attachment>,
    /// For an index: each platform, its node and its manifest's digest.
    pub platforms: Vec<(String, String, String)>,
}

/// What the protocol reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pin's upload starts.
    Pushing { node: String, reference: String },
    /// A pin is in the registry already (a build job pushed it): nothing to upload.
    Present { node: String, reference: String },
    /// A push failed in a way that may pass later; the next try is after `pause`.
    Retrying { reference: String, error: String, pause: Duration },
    /// An image has its documents (attached now, or there already).
    Attached { node: String, attachments: Vec<Attachment> },
    /// The image index over an image's platforms is written, untagged yet.
    Indexed { node: String, reference: String, platforms: Vec<String> },
    /// Every tag of an image now names `digest`.
    Tagged { node: String, repository: String, digest: String, tags: Vec<String> },
}

/// Releases `pushes`: every pin (pushed and read back), then every image's attachments, then
/// the image indexes over some of them (and their signatures), then every tag.
pub async fn publish(
    pusher: &impl PinPusher,
    store: &(impl ManifestStore + ArtifactStore),
    attestor: &impl Attestor,
    pushes: &[Push],
    indexes: &[IndexPush],
    backoff: Backoff,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<Published>, ReleaseError> {
    let manifests = push_pins(pusher, store, pushes, backoff, on_event).await?;
    let mut attachments = Vec::new();
    for (push, manifest) in pushes.iter().zip(&manifests) {
        let attached =
            super::attach::attach(store, attestor, &push.node, &push.repository, &push.path, manifest).await?;
        on_event(Event::Attached { node: push.node.clone(), attachments: attached.clone() });
        attachments.push(attached);
    }
    let mut written = Vec::new();
    for index in indexes {
        let manifest = write_index(store, pushes, &manifests, index, on_event).await?;
        // An index's documents are its platforms'; what it gets of its own is a signature.
        let signed =
            super::attach::sign(store, attestor, &index.node, &index.repository, &index.path, &manifest).await?;
        if !signed.is_empty() {
            on_event(Event::Attached { node: index.node.clone(), attachments: signed.clone() });
        }
        written.push((manifest, signed));
    }
    let mut published = Vec::new();
    for ((push, manifest), attachments) in pushes.iter().zip(manifests).zip(attachments) {
        let mut tags = vec![push.pin.clone()];
        tags.extend(push.tags.iter().cloned());
        let mut released = tag(store, &push.node, &push.repository, &push.path, &push.tags, manifest, on_event).await?;
        released.tags = tags;
        released.attachments = attachments;
        published.push(released);
    }
    for (index, (manifest, signed)) in indexes.iter().zip(written) {
        let mut released =
            tag(store, &index.node, &index.repository, &index.path, &index.tags, manifest, on_event).await?;
        released.attachments = signed;
        released.platforms = index
            .platforms
            .iter()
            .map(|(platform, i)| (platform.to_string(), pushes[*i].node.clone(), published[*i].digest.clone()))
            .collect();
        published.push(released);
    }
    Ok(published)
}

/// Puts `manifest` under every tag of `tags`.
async fn tag(
    store: &impl ManifestStore,
    node: &str,
    repository: &str,
    path: &str,
    tags: &[String],
    manifest: Manifest,
    on_event: &mut dyn FnMut(Event),
) -> Result<Published, ReleaseError> {
    for tag in tags {
        store.put_manifest(path, tag, &manifest).await?;
    }
    if !tags.is_empty() {
        on_event(Event::Tagged {
            node: node.to_string(),
            repository: repository.to_string(),
            digest: manifest.digest.clone(),
            tags: tags.to_vec(),
        });
    }
    Ok(Published {
        node: node.to_string(),
        repository: repository.to_string(),
        digest: manifest.digest,
        tags: tags.to_vec(),
        attachments: vec![],
        platforms: vec![],
    })
}

/// Writes the image index over `index`'s platforms, once each platform manifest's configuration
/// says that platform: by its digest, so nothing names it until the tags move.
async fn write_index(
    store: &impl ManifestStore,
    pushes: &[Push],
    manifests: &[Manifest],
    index: &IndexPush,
    on_event: &mut dyn FnMut(Event),
) -> Result<Manifest, ReleaseError> {
    let mut entries = Vec::new();
    for (platform, i) in &index.platforms {
        let (push, manifest) = (&pushes[*i], &manifests[*i]);
        let config = match super::index::config_digest(manifest) {
            Some(digest) => store.blob(&push.path, &digest).await?,
            None => None,
        };
        let found = config.as_deref().and_then(super::index::config_platform).unwrap_or_else(|| "unknown".into());
        if found != platform.to_string() {
            return Err(ReleaseError::WrongPlatform {
                reference: push.pin_reference(),
                expected: platform.to_string(),
                found,
            });
        }
        entries.push((platform, manifest));
    }
    let manifest = super::index::image_index(&entries);
    store.put_manifest(&index.path, &manifest.digest, &manifest).await?;
    on_event(Event::Indexed {
        node: index.node.clone(),
        reference: format!("{}@{}", index.repository, manifest.digest),
        platforms: index.platforms.iter().map(|(platform, _)| platform.to_string()).collect(),
    });
    Ok(manifest)
}

/// Pushes every pin the registry lacks and reads every pin's manifest back.
async fn push_pins(
    pusher: &impl PinPusher,
    store: &impl ManifestStore,
    pushes: &[Push],
    backoff: Backoff,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<Manifest>, ReleaseError> {
    let mut manifests = Vec::new();
    for push in pushes {
        let reference = push.pin_reference();
        // A pin a build job pushed already is not pushed again: its tags are manifest PUTs.
        if let Some(manifest) = store.manifest(&push.path, &push.pin).await? {
            on_event(Event::Present { node: push.node.clone(), reference });
            manifests.push(manifest);
            continue;
        }
        on_event(Event::Pushing { node: push.node.clone(), reference: reference.clone() });
        push_with_retries(pusher, &push.image_id, &push.repository, &push.pin, backoff, on_event)
            .await
            .map_err(|source| ReleaseError::Push { reference: reference.clone(), source })?;
        let manifest = store.manifest(&push.path, &push.pin).await?.ok_or(ReleaseError::ReadBack { reference })?;
        manifests.push(manifest);
    }
    Ok(manifests)
}

/// Pushes image `image_id` as `repository:pin`, trying transient failures again with backoff
/// (the engine skips blobs the registry already has, so a retry resumes).
pub async fn push_with_retries<F: FnMut(Event) + ?Sized>(
    pusher: &impl PinPusher,
    image_id: &str,
    repository: &str,
    pin: &str,
    backoff: Backoff,
    on_event: &mut F,
) -> Result<(), EngineError> {
    let mut pause = backoff.first;
    let mut attempt = 0;
    loop {
        match pusher.push_pin(image_id, repository, pin).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < backoff.retries && error.is_transient() => {
                on_event(Event::Retrying { reference: format!("{repository}:{pin}"), error: error.to_string(), pause });
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
pub(crate) mod fakes {
    //! In-memory stand-ins for the engine's push and the registry's manifests, recording every
    //! operation in order, with failures injected by operation number.

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::registry::{digest_of, Referrer};
    use crate::supply::attach::{Artifact, Blob, Kind};

    #[derive(Default)]
    pub struct World {
        /// `push path:pin`, `get path:ref`, `config path@digest`, `put path:tag`, `blob path`,
        /// `referrers path`, `attest node kinds`, in the order they happened.
        pub log: Mutex<Vec<String>>,
        /// Manifests by `path:reference`.
        pub manifests: Mutex<HashMap<String, Manifest>>,
        /// Image configurations by digest (the image ID): what a push uploads.
        pub configs: Mutex<HashMap<String, Vec<u8>>>,
        /// The architecture of images by ID, for their configurations (default `amd64`).
        pub architectures: Mutex<HashMap<String, String>>,
        /// Operation numbers (0-based, counted over the log) that fail, and how.
        pub failures: Mutex<HashMap<usize, Failure>>,
        /// Whether the registry has the referrers API.
        pub referrers_api: AtomicBool,
        /// Blobs stored, by `path@digest`.
        pub blobs: Mutex<HashMap<String, Vec<u8>>>,
        /// The attestor fails.
        pub attestor_fails: AtomicBool,
        /// The attestor signs (it has a key).
        pub signs: AtomicBool,
    }

    #[derive(Debug, Clone, Copy)]
    pub enum Failure {
        /// A registry that went away (transient).
        Unreachable,
        /// A refusal (not transient).
        Refused,
    }

    impl World {
        fn record(&self, entry: String) -> Option<Failure> {
            let mut log = self.log.lock().unwrap();
            let number = log.len();
            log.push(entry);
            self.failures.lock().unwrap().remove(&number)
        }

        pub fn fail_at(&self, number: usize, failure: Failure) {
            self.failures.lock().unwrap().insert(number, failure);
        }

        pub fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }

        pub fn put(&self, key: &str, manifest: Manifest) {
            self.manifests.lock().unwrap().insert(key.to_string(), manifest);
        }

        pub fn get(&self, key: &str) -> Option<Manifest> {
            self.manifests.lock().unwrap().get(key).cloned()
        }

        pub fn with_referrers_api(self) -> World {
            self.referrers_api.store(true, Ordering::SeqCst);
            self
        }
    }

    /// The manifest an image's push leaves: its bytes name the image's configuration.
    pub fn manifest_of(image_id: &str) -> Manifest {
        let bytes = format!("{{\"schemaVersion\":2,\"config\":{{\"digest\":\"{image_id}\"}}}}").into_bytes();
        Manifest { media_type: crate::registry::MANIFEST_TYPES[0].into(), digest: digest_of(&bytes), bytes }
    }

    fn engine_error(failure: Failure) -> EngineError {
        let message = match failure {
            Failure::Unreachable => {
                "Put \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"
            }
            Failure::Refused => "unauthorized: authentication required",
        };
        EngineError::reported("pushing", "reg/ns/image", message)
    }

    fn registry_error(failure: Failure) -> RegistryError {
        match failure {
            Failure::Unreachable => {
                RegistryError::Unreachable { registry: "fake".into(), reason: "connection refused".into() }
            }
            Failure::Refused => RegistryError::Unauthorized { registry: "fake".into(), who: "nobody".into() },
        }
    }

    impl PinPusher for World {
        async fn push_pin(&self, image_id: &str, repository: &str, pin: &str) -> Result<(), EngineError> {
            let path = repository.split_once('/').map_or(repository, |(_, path)| path);
            if let Some(failure) = self.record(format!("push {path}:{pin}")) {
                return Err(engine_error(failure));
            }
            self.put(&format!("{path}:{pin}"), manifest_of(image_id));
            let architecture =
                self.architectures.lock().unwrap().get(image_id).cloned().unwrap_or_else(|| "amd64".into());
            let config = format!("{{\"architecture\":\"{architecture}\",\"os\":\"linux\"}}").into_bytes();
            self.configs.lock().unwrap().insert(image_id.to_string(), config);
            Ok(())
        }
    }

    impl ManifestStore for World {
        async fn manifest(&self, path: &str, reference: &str) -> Result<Option<Manifest>, RegistryError> {
            match self.record(format!("get {path}:{reference}")) {
                Some(failure) => Err(registry_error(failure)),
                None => Ok(self.get(&format!("{path}:{reference}"))),
            }
        }

        async fn blob(&self, path: &str, digest: &str) -> Result<Option<Vec<u8>>, RegistryError> {
            match self.record(format!("config {path}@{digest}")) {
                Some(failure) => Err(registry_error(failure)),
                None => Ok(self.configs.lock().unwrap().get(digest).cloned()),
            }
        }

        async fn put_manifest(&self, path: &str, tag: &str, manifest: &Manifest) -> Result<String, RegistryError> {
            if let Some(failure) = self.record(format!("put {path}:{tag}")) {
                return Err(registry_error(failure));
            }
            self.put(&format!("{path}:{tag}"), manifest.clone());
            self.put(&format!("{path}:{}", manifest.digest), manifest.clone());
            Ok(manifest.digest.clone())
        }
    }

    impl ArtifactStore for World {
        async fn push_blob(&self, path: &str, bytes: &[u8]) -> Result<String, RegistryError> {
            if let Some(failure) = self.record(format!("blob {path}")) {
                return Err(registry_error(failure));
            }
            let digest = digest_of(bytes);
            self.blobs.lock().unwrap().insert(format!("{path}@{digest}"), bytes.to_vec());
            Ok(digest)
        }

        async fn referrers(&self, path: &str, digest: &str) -> Result<Option<Vec<Referrer>>, RegistryError> {
            if let Some(failure) = self.record(format!("referrers {path}")) {
                return Err(registry_error(failure));
            }
            if !self.referrers_api.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let prefix = format!("{path}:sha256:");
            let manifests = self.manifests.lock().unwrap();
            let mut found: Vec<Referrer> = manifests
                .iter()
                .filter(|(key, _)| key.starts_with(&prefix))
                .filter_map(|(_, m)| {
                    let value: serde_json::Value = serde_json::from_slice(&m.bytes).ok()?;
                    (value["subject"]["digest"] == digest).then(|| Referrer {
                        digest: m.digest.clone(),
                        media_type: m.media_type.clone(),
                        artifact_type: value["artifactType"].as_str().unwrap_or_default().to_string(),
                    })
                })
                .collect();
            found.sort_by(|a, b| a.digest.cmp(&b.digest));
            found.dedup();
            Ok(Some(found))
        }
    }

    impl Attestor for World {
        fn kinds(&self) -> Vec<Kind> {
            let mut kinds = vec![Kind::Sbom, Kind::Provenance];
            if self.signs.load(Ordering::SeqCst) {
                kinds.push(Kind::Signature);
            }
            kinds
        }

        async fn artifacts(
            &self,
            node: &str,
            _: &str,
            image: &Manifest,
            kinds: &[Kind],
        ) -> Result<Vec<Artifact>, ReleaseError> {
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            self.record(format!("attest {node} {}", names.join(",")));
            if self.attestor_fails.load(Ordering::SeqCst) {
                return Err(ReleaseError::Attest { node: node.into(), reason: "the image is gone".into() });
            }
            Ok(kinds
                .iter()
                .map(|kind| {
                    let text = format!("{} of {node} at {}", kind.name(), image.digest);
                    Artifact::new(*kind, vec![Blob::new(kind.artifact_type(), text.into_bytes())])
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fakes::{manifest_of, Failure, World};
    use super::*;
    use crate::release::attach::attached;
    use crate::supply::attach::{fallback_tag, Kind};

    const NO_WAIT: Backoff = Backoff { retries: 2, first: Duration::ZERO };

    fn pushes() -> Vec<Push> {
        ["base", "app"]
            .iter()
            .map(|name| Push {
                node: name.to_string(),
                image_id: format!("sha256:{name}"),
                repository: format!("reg/ns/{name}"),
                path: format!("ns/{name}"),
                pin: "inputs-1".into(),
                tags: vec!["1.0-main".into(), "abc".into()],
            })
            .collect()
    }

    async fn run(world: &World) -> (Result<Vec<Published>, ReleaseError>, Vec<Event>) {
        let mut events = Vec::new();
        let result = publish(world, world, world, &pushes(), &[], NO_WAIT, &mut |event| events.push(event)).await;
        (result, events)
    }

    /// Human tags moved (not the attachments' `sha256-...` tags or digests).
    fn tags_moved(world: &World) -> Vec<String> {
        world.log().into_iter().filter(|entry| entry.starts_with("put ") && !entry.contains(":sha256")).collect()
    }

    /// The log without the attachment work.
    fn pins_and_tags(world: &World) -> Vec<String> {
        let attachment = |e: &String| {
            e.contains(":sha256-") || e.starts_with("blob ") || e.starts_with("referrers ") || e.starts_with("attest ")
        };
        world.log().into_iter().filter(|e| !attachment(e)).collect()
    }

    #[tokio::test]
    async fn every_pin_is_pushed_and_read_back_before_the_first_tag_moves() {
        let world = World::default();
        let (result, _) = run(&world).await;
        let published = result.unwrap();
        assert_eq!(
            pins_and_tags(&world),
            [
                "get ns/base:inputs-1",
                "push ns/base:inputs-1",
                "get ns/base:inputs-1",
                "get ns/app:inputs-1",
                "push ns/app:inputs-1",
                "get ns/app:inputs-1",
                "put ns/base:1.0-main",
                "put ns/base:abc",
                "put ns/app:1.0-main",
                "put ns/app:abc",
            ]
        );
        assert_eq!(published[0].digest, manifest_of("sha256:base").digest);
        assert_eq!(published[1].tags, ["inputs-1", "1.0-main", "abc"]);
        assert_eq!(world.get("ns/app:abc"), world.get("ns/app:inputs-1"), "a tag is the pin's manifest, byte for byte");
    }

    #[rstest::rstest]
    #[case::first_lookup_fails(0)]
    #[case::first_push_refused(1)]
    #[case::first_read_back_fails(2)]
    #[case::second_push_refused(4)]
    #[case::second_read_back_fails(5)]
    #[tokio::test]
    async fn a_failure_before_the_tags_moves_no_tag(#[case] at: usize) {
        let world = World::default();
        world.fail_at(at, Failure::Refused);
        let (result, _) = run(&world).await;
        assert!(result.is_err());
        assert!(tags_moved(&world).is_empty(), "{:?}", world.log());
        assert_eq!(world.log().len(), at + 1, "nothing is tried after a refusal: {:?}", world.log());
    }

    #[tokio::test]
    async fn a_refused_push_is_a_registry_failure_not_tried_again() {
        let world = World::default();
        world.fail_at(1, Failure::Refused);
        let (result, events) = run(&world).await;
        let error = result.unwrap_err();
        assert!(matches!(error, ReleaseError::Push { .. }), "{error:?}");
        assert_eq!(error.exit_code(), crate::error::ExitCode::Registry);
        assert!(!events.iter().any(|e| matches!(e, Event::Retrying { .. })));
    }

    #[tokio::test]
    async fn a_transient_push_failure_is_tried_again_and_the_release_completes() {
        let world = World::default();
        world.fail_at(1, Failure::Unreachable);
        world.fail_at(2, Failure::Unreachable);
        let (result, events) = run(&world).await;
        assert_eq!(result.unwrap().len(), 2);
        let retries = events.iter().filter(|e| matches!(e, Event::Retrying { .. })).count();
        assert_eq!(retries, 2, "{events:?}");
        assert_eq!(tags_moved(&world).len(), 4);
    }

    #[tokio::test]
    async fn a_push_that_keeps_failing_gives_up_after_the_retries_and_moves_no_tag() {
        let world = World::default();
        for at in 1..4 {
            world.fail_at(at, Failure::Unreachable);
        }
        let (result, _) = run(&world).await;
        assert!(matches!(result.unwrap_err(), ReleaseError::Push { .. }));
        assert_eq!(world.log().len(), 4, "a lookup, one try and two retries: {:?}", world.log());
        assert!(tags_moved(&world).is_empty());
    }

    #[tokio::test]
    async fn pins_the_registry_has_already_are_not_pushed_again() {
        let world = World::default();
        world.put("ns/base:inputs-1", manifest_of("sha256:base"));
        let (result, events) = run(&world).await;
        result.unwrap();
        assert!(!world.log().contains(&"push ns/base:inputs-1".to_string()), "{:?}", world.log());
        assert!(world.log().contains(&"push ns/app:inputs-1".to_string()));
        assert!(events.iter().any(|e| matches!(e, Event::Present { node, .. } if node == "base")));
        assert_eq!(tags_moved(&world).len(), 4);
    }

    #[tokio::test]
    async fn a_pin_missing_after_its_push_stops_the_release() {
        struct Forgetful(World);
        impl PinPusher for Forgetful {
            async fn push_pin(&self, _: &str, repository: &str, pin: &str) -> Result<(), EngineError> {
                self.0.log.lock().unwrap().push(format!("push {repository}:{pin}"));
                Ok(())
            }
        }
        let forgetful = Forgetful(World::default());
        let result = publish(&forgetful, &forgetful.0, &forgetful.0, &pushes(), &[], NO_WAIT, &mut |_| {}).await;
        assert!(matches!(result.unwrap_err(), ReleaseError::ReadBack { .. }));
        assert!(tags_moved(&forgetful.0).is_empty());
    }

    /// Where the first entry of the log that `matches` is.
    fn first(world: &World, matches: impl Fn(&str) -> bool) -> usize {
        world.log().iter().position(|e| matches(e)).unwrap_or(usize::MAX)
    }

    fn last(world: &World, matches: impl Fn(&str) -> bool) -> usize {
        world.log().iter().rposition(|e| matches(e)).unwrap()
    }

    fn is_tag(entry: &str) -> bool {
        entry.starts_with("put ") && !entry.contains(":sha256")
    }

    #[tokio::test]
    async fn attachments_come_after_every_pin_and_before_the_first_tag() {
        let world = World::default();
        let (result, events) = run(&world).await;
        let published = result.unwrap();
        let last_pin = last(&world, |e| e.starts_with("push ") || e.contains(":inputs-"));
        let first_attachment = first(&world, |e| e.starts_with("attest "));
        let last_attachment = last(&world, |e| e.starts_with("put ") && e.contains(":sha256"));
        assert!(last_pin < first_attachment, "{:?}", world.log());
        assert!(last_attachment < first(&world, is_tag), "no tag before its attachments: {:?}", world.log());
        for (push, image) in pushes().iter().zip(&published) {
            let kinds: Vec<Kind> = image.attachments.iter().map(|a| a.kind).collect();
            assert_eq!(kinds, [Kind::Sbom, Kind::Provenance], "{}", push.node);
            let sbom = world.get(&format!("{}:{}", push.path, fallback_tag(&image.digest, Kind::Sbom)));
            let sbom = sbom.expect("no referrers API here: the tag scheme");
            let value: serde_json::Value = serde_json::from_slice(&sbom.bytes).unwrap();
            assert_eq!(value["subject"]["digest"], image.digest.as_str());
            assert_eq!(
                image.attachments[0].reference,
                format!("{}:{}", push.repository, fallback_tag(&image.digest, Kind::Sbom))
            );
            let layer = value["layers"][0]["digest"].as_str().unwrap();
            assert!(world.blobs.lock().unwrap().contains_key(&format!("{}@{layer}", push.path)), "layer uploaded");
        }
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Attached { .. })).count(), 2);
    }

    #[tokio::test]
    async fn with_the_referrers_api_artifacts_are_listed_by_the_image_and_tagged_nothing() {
        let world = World::default().with_referrers_api();
        let published = run(&world).await.0.unwrap();
        assert!(!world.log().iter().any(|e| e.contains(".sbom") || e.contains(".att")), "{:?}", world.log());
        let found = attached(&world, "ns/base", &published[0].digest).await.unwrap();
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), [Kind::Sbom, Kind::Provenance]);
        assert!(published[0].attachments[0].reference.starts_with("reg/ns/base@sha256:"));
    }

    #[rstest::rstest]
    #[case::tag_scheme(false)]
    #[case::referrers(true)]
    #[tokio::test]
    async fn a_second_release_makes_and_pushes_no_attachment_again(#[case] api: bool) {
        let world = World::default();
        world.referrers_api.store(api, std::sync::atomic::Ordering::SeqCst);
        run(&world).await.0.unwrap();
        let before = world.log().len();
        let published = run(&world).await.0.unwrap();
        let again = &world.log()[before..];
        assert!(!again.iter().any(|e| e.starts_with("attest ") || e.starts_with("blob ")), "{again:?}");
        assert!(published.iter().flat_map(|p| &p.attachments).all(|a| a.status == "present"));
    }

    #[tokio::test]
    async fn an_image_whose_documents_cannot_be_made_moves_no_tag() {
        let world = World::default();
        world.attestor_fails.store(true, std::sync::atomic::Ordering::SeqCst);
        let (result, _) = run(&world).await;
        assert!(matches!(result.unwrap_err(), ReleaseError::Attest { .. }));
        assert!(tags_moved(&world).is_empty(), "{:?}", world.log());
    }

    #[tokio::test]
    async fn a_refused_attachment_upload_moves_no_tag() {
        // Where the first and the last upload of a release are, from a release that succeeds.
        let rehearsal = World::default();
        run(&rehearsal).await.0.unwrap();
        let first = rehearsal.log().iter().position(|e| e.starts_with("blob ")).unwrap();
        let last = rehearsal.log().iter().rposition(|e| e.starts_with("blob ")).unwrap();
        for at in [first, last] {
            let world = World::default();
            world.fail_at(at, Failure::Refused);
            assert!(run(&world).await.0.is_err(), "upload {at} refused");
            assert!(tags_moved(&world).is_empty(), "{:?}", world.log());
        }
    }

    /// One image built for two platforms: two pins, and the index over them that carries the tags.
    fn platforms() -> (Vec<Push>, Vec<IndexPush>) {
        let pushes: Vec<Push> = ["amd64", "arm64"]
            .iter()
            .map(|arch| Push {
                node: format!("base/{arch}"),
                image_id: format!("sha256:base-{arch}"),
                repository: "reg/ns/base".into(),
                path: "ns/base".into(),
                pin: format!("inputs-{arch}"),
                tags: vec![],
            })
            .collect();
        let index = IndexPush {
            node: "base".into(),
            repository: "reg/ns/base".into(),
            path: "ns/base".into(),
            platforms: vec![(Platform::parse("linux/amd64").unwrap(), 0), (Platform::parse("linux/arm64").unwrap(), 1)],
            tags: vec!["1.0-main".into()],
        };
        (pushes, vec![index])
    }

    fn world_of_platforms() -> World {
        let world = World::default();
        world.architectures.lock().unwrap().insert("sha256:base-arm64".into(), "arm64".into());
        world
    }

    #[tokio::test]
    async fn the_index_is_written_after_every_platform_pin_and_the_tags_name_it() {
        let world = world_of_platforms();
        let (pushes, indexes) = platforms();
        let published = publish(&world, &world, &world, &pushes, &indexes, NO_WAIT, &mut |_| {}).await.unwrap();
        let index = &published[2];
        assert_eq!(
            pins_and_tags(&world),
            [
                "get ns/base:inputs-amd64",
                "push ns/base:inputs-amd64",
                "get ns/base:inputs-amd64",
                "get ns/base:inputs-arm64",
                "push ns/base:inputs-arm64",
                "get ns/base:inputs-arm64",
                "config ns/base@sha256:base-amd64",
                "config ns/base@sha256:base-arm64",
                &format!("put ns/base:{}", index.digest),
                "put ns/base:1.0-main",
            ]
        );
        let tagged = world.get("ns/base:1.0-main").unwrap();
        assert_eq!(tagged.digest, index.digest, "the tag names the index");
        assert_eq!(tagged.media_type, super::super::index::INDEX_MEDIA_TYPE);
        let listed = super::super::index::index_platforms(&tagged.bytes);
        assert_eq!(
            listed,
            [
                ("linux/amd64".to_string(), manifest_of("sha256:base-amd64").digest),
                ("linux/arm64".to_string(), manifest_of("sha256:base-arm64").digest)
            ]
        );
        assert_eq!(index.platforms[1], ("linux/arm64".into(), "base/arm64".into(), listed[1].1.clone()));
        assert_eq!(published[0].tags, ["inputs-amd64"], "a platform keeps its pin; the tags are the index's");
    }

    #[tokio::test]
    async fn a_platform_image_whose_configuration_says_another_platform_writes_no_index_and_moves_no_tag() {
        let world = World::default(); // both configurations say amd64
        let (pushes, indexes) = platforms();
        let error = publish(&world, &world, &world, &pushes, &indexes, NO_WAIT, &mut |_| {}).await.unwrap_err();
        assert!(
            matches!(&error, ReleaseError::WrongPlatform { expected, found, .. } if expected == "linux/arm64" && found == "linux/amd64"),
            "{error}"
        );
        assert_eq!(error.exit_code(), crate::error::ExitCode::Refused);
        assert!(tags_moved(&world).is_empty(), "{:?}", world.log());
    }

    #[tokio::test]
    async fn each_platform_is_attached_before_the_index_and_the_index_is_signed_before_its_tag() {
        let world = world_of_platforms();
        world.signs.store(true, std::sync::atomic::Ordering::SeqCst);
        let (pushes, indexes) = platforms();
        let published = publish(&world, &world, &world, &pushes, &indexes, NO_WAIT, &mut |_| {}).await.unwrap();
        let index = &published[2];
        let put_index = first(&world, |e| e == format!("put ns/base:{}", index.digest));
        for platform in &published[..2] {
            let kinds: Vec<Kind> = platform.attachments.iter().map(|a| a.kind).collect();
            assert_eq!(kinds, [Kind::Sbom, Kind::Provenance, Kind::Signature], "{}", platform.node);
            let sbom = format!("put ns/base:{}", fallback_tag(&platform.digest, Kind::Sbom));
            assert!(first(&world, |e| e == sbom) < put_index, "{:?}", world.log());
        }
        let kinds: Vec<Kind> = index.attachments.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [Kind::Signature], "an index has no SBOM of its own: its platforms do");
        let signature = format!("put ns/base:{}", fallback_tag(&index.digest, Kind::Signature));
        assert!(put_index < first(&world, |e| e == signature), "{:?}", world.log());
        assert!(first(&world, |e| e == signature) < first(&world, is_tag), "{:?}", world.log());
    }

    #[tokio::test]
    async fn a_failure_before_the_index_is_written_moves_no_tag() {
        // Where the first configuration read and the index's write are, from a release that succeeds.
        let rehearsal = world_of_platforms();
        let (pushes, indexes) = platforms();
        let published = publish(&rehearsal, &rehearsal, &rehearsal, &pushes, &indexes, NO_WAIT, &mut |_| {}).await;
        let put_index = format!("put ns/base:{}", published.unwrap()[2].digest);
        let reading_a_configuration = first(&rehearsal, |e| e.starts_with("config "));
        let writing_the_index = first(&rehearsal, |e| e == put_index);
        for at in [reading_a_configuration, writing_the_index] {
            let world = world_of_platforms();
            world.fail_at(at, Failure::Refused);
            assert!(publish(&world, &world, &world, &pushes, &indexes, NO_WAIT, &mut |_| {}).await.is_err());
            assert!(world.get("ns/base:1.0-main").is_none(), "{:?}", world.log());
        }
    }
}
