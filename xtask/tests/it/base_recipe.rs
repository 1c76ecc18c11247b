//! The real stack's Debian base: made with debootstrap when the engine does not have it (slow
//! the first time on a machine, about a minute; later runs reuse the image).

use std::sync::Arc;

use xtask::bases;
use xtask::engine::Engine;
use xtask::progress::Reporter;
use xtask::spec::Spec;

/// The real base on this engine (made by debootstrap when it is missing): the spec, its pin
/// and what `ensure_pinned` returned. Shared with the tests that need a real Debian image.
pub async fn real_base() -> (Spec, xtask::identity::Pin, bases::BaseImage) {
    let root = xtask::paths::project_root();
    let spec = Spec::load(&root.join("images/spec.yml")).unwrap_or_else(|e| panic!("{e}"));
    let base = &spec.bases["debian"];
    let engine = Engine::connect().await.unwrap();
    let logs = tempfile::tempdir().unwrap();
    let reporter = Arc::new(Reporter::quiet(logs.path()));
    let platform = xtask::platform::Platform::parse("linux/amd64").unwrap();
    let pin = xtask::identity::Pin::new(
        xtask::identity::base_digest(base, &spec.dir, &platform).unwrap(),
        spec.base_repository("debian"),
    );
    let registry = xtask::cache::RegistryCache::off();
    let wanted = bases::Wanted { base, platform: &platform, pin: &pin, fallback: None, spec_dir: &spec.dir };
    let made =
        bases::ensure_pinned(&engine, wanted, &registry, false, &reporter).await.unwrap_or_else(|e| panic!("{e}"));
    (spec, pin, made)
}

#[tokio::test]
async fn the_real_base_is_on_the_engine_or_made_by_debootstrap() {
    let (spec, pin, made) = real_base().await;
    let base = &spec.bases["debian"];
    assert!(
        base.recipe.as_ref().and_then(|r| r.debootstrap.as_ref()).is_some(),
        "the real base has a debootstrap recipe"
    );
    let engine = Engine::connect().await.unwrap();
    assert_eq!(made.reference, pin.reference(), "children are built on the base's pin");
    let image = engine.image(&made.reference).await.unwrap().expect("the base is on the engine");
    assert_eq!(image.id.as_deref(), Some(made.id.as_str()));
    assert_eq!(image.os.as_deref(), Some("linux"));
    assert_eq!(image.architecture.as_deref(), Some("amd64"));
    // A Debian minbase is tens of megabytes, not an empty import.
    assert!(image.size.unwrap_or_default() > 50_000_000, "{:?}", image.size);
}
