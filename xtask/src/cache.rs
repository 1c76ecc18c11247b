//! Where built images are: on this engine, or in the stack's registry (the build cache of
//! record). Asking the registry costs one `HEAD` of a manifest per pin: nothing is pulled to
//! learn that an image is built.
//!
//! With no registry configured, or none reachable, everything is decided on this engine alone,
//! with one notice, never a failure: a laptop without network still builds.

use std::sync::{Arc, Mutex};

use crate::engine::{Engine, EngineError, ImageInspect};
use crate::identity::Pin;
use crate::registry::{self, Registry, RegistryError};
use crate::spec::Spec;

/// The image `pin` names on the engine, when it is there and was built from those inputs (the
/// `xtask.stack.inputs` label says so).
pub async fn on_engine(engine: &Engine, pin: &Pin) -> Result<Option<ImageInspect>, EngineError> {
    let Some(image) = engine.image(&pin.reference()).await? else { return Ok(None) };
    Ok((crate::engine::label(&image, crate::labels::INPUTS) == Some(pin.digest.as_str())).then_some(image))
}

/// The stack's registry, asked for pins; or nothing, when no registry is to be asked.
pub struct RegistryCache {
    client: Option<Arc<Registry>>,
    /// Why the registry stopped being asked (it was unreachable, or refused us): said once.
    gone: Mutex<Option<String>>,
}

impl RegistryCache {
    /// A cache that asks nothing.
    pub fn off() -> RegistryCache {
        RegistryCache { client: None, gone: Mutex::new(None) }
    }

    /// The registry the spec's repositories name; `Err` with the notice to give when there is
    /// none (`stack.registry: ""`).
    pub fn for_spec(spec: &Spec) -> Result<RegistryCache, String> {
        if spec.stack.registry.is_empty() {
            return Err(format!(
                "notice: {} sets no `stack.registry`, so there is no registry to look for built images in; deciding from this engine only",
                spec.file.display()
            ));
        }
        let host = &spec.stack.registry;
        // One retry: an absent registry must not hold every build up.
        let client = Registry::new(host, crate::credentials::lookup(&registry::address(host).0)).with_retries(1);
        Ok(RegistryCache { client: Some(Arc::new(client)), gone: Mutex::new(None) })
    }

    pub fn is_on(&self) -> bool {
        self.client.is_some()
    }

    /// Whether the registry holds `pin`. A registry that cannot be reached or refuses us is
    /// asked no more in this run; the first such failure is returned as a notice.
    pub async fn has(&self, pin: &Pin) -> (bool, Option<String>) {
        let Some(client) = self.client.clone() else { return (false, None) };
        if self.gone.lock().map(|gone| gone.is_some()).unwrap_or(true) {
            return (false, None);
        }
        let Some((_, path)) = registry::split_repository(&pin.repository) else { return (false, None) };
        let tag = pin.tag();
        let asked = tokio::task::spawn_blocking(move || client.manifest_exists(&path, &tag)).await;
        match asked {
            Ok(Ok(found)) => (found.is_some(), None),
            Ok(Err(error)) => (false, self.give_up(&error)),
            Err(panicked) => (
                false,
                self.give_up(&RegistryError::Unreachable {
                    registry: "(registry client)".into(),
                    reason: panicked.to_string(),
                }),
            ),
        }
    }

    fn give_up(&self, error: &RegistryError) -> Option<String> {
        let mut gone = self.gone.lock().ok()?;
        if gone.is_some() {
            return None;
        }
        let first_line = error.to_string().lines().next().unwrap_or_default().to_string();
        *gone = Some(first_line.clone());
        Some(format!(
            "notice: the registry cannot be asked for built images ({first_line}); deciding from this engine only"
        ))
    }
}
