//! One image's job in a build run, as decided: an image up to date here gets its `:build` tag;
//! one up to date in the registry is pulled only when the caller needs it here; one that builds
//! pulls the pins it is built on (only those, only now), builds with BuildKit, checks its size
//! budget, tags its pin and `:build`, and pushes its pin when asked. Tags move only after
//! success.

use std::collections::HashMap;

use super::{Built, Decision, Failure, Place, Shared, Status, CA_BUNDLE};
use crate::context::{self, Generated};
use crate::engine::{BuildEvent, BuildRequest, ImageInspect};
use crate::graph::NodeId;
use crate::identity::Pin;
use crate::labels;
use crate::spec::Spec;

/// How a job fails: the message, and where the build was when it did.
struct Failed {
    message: String,
    step: Option<String>,
    tail: Vec<String>,
    push: bool,
}

impl Failed {
    fn new(message: impl std::fmt::Display) -> Failed {
        Failed { message: message.to_string(), step: None, tail: vec![], push: false }
    }
}

/// Runs the job of node `id`; `inputs` holds what its parent and dependencies became.
pub(super) async fn run(shared: &Shared, id: &NodeId, inputs: HashMap<String, Built>) -> Result<Built, Failure> {
    let log = shared.reporter.log_path(&id.name);
    let result = match &shared.decisions[&id.name] {
        Decision::UpToDate(Place::Engine) => up_to_date(shared, id).await,
        Decision::UpToDate(Place::Registry) => in_registry(shared, id).await,
        Decision::Build(_) => build(shared, id, &inputs).await,
    };
    result.map_err(|failed| Failure {
        message: failed.message,
        step: failed.step,
        tail: failed.tail,
        log: log.clone(),
        push: failed.push,
    })
}

/// What every outcome starts from: the pin, and the image `:build` named before.
async fn start(shared: &Shared, id: &NodeId) -> Result<(Pin, Option<ImageInspect>), Failed> {
    let pin = shared.identities.nodes[&id.name].clone();
    let previous = shared.engine_for(id).image(&super::build_reference(&shared.spec, id)).await.map_err(Failed::new)?;
    Ok((pin, previous))
}

fn built(status: Status, pin: &Pin, image: &ImageInspect, previous: Option<&ImageInspect>, pushed: bool) -> Built {
    Built {
        status,
        id: image.id.clone().unwrap_or_default(),
        pin: pin.reference(),
        digest: pin.digest.clone(),
        repository: pin.repository.clone(),
        size: image.size.unwrap_or_default(),
        previous_size: previous.and_then(|p| p.size),
        pushed,
    }
}

/// Within its budget, `:build` names it.
async fn keep(
    shared: &Shared,
    id: &NodeId,
    image: &ImageInspect,
    previous: Option<&ImageInspect>,
) -> Result<(), Failed> {
    if let Some(problem) = super::over_budget(&shared.spec, id, image.size.unwrap_or_default()) {
        return Err(Failed::new(problem));
    }
    let image_id = image.id.clone().unwrap_or_default();
    if previous.and_then(|p| p.id.as_ref()) != Some(&image_id) {
        let repository = shared.spec.repository(&id.image, &id.variant);
        let tag = super::build_tag(&shared.spec, id);
        shared.engine_for(id).tag(&image_id, &repository, &tag).await.map_err(Failed::new)?;
    }
    Ok(())
}

async fn up_to_date(shared: &Shared, id: &NodeId) -> Result<Built, Failed> {
    let (pin, previous) = start(shared, id).await?;
    let image = crate::cache::on_engine(shared.engine_for(id), &pin)
        .await
        .map_err(Failed::new)?
        .ok_or_else(|| Failed::new(format!("{} went away during the run; run the build again", pin.reference())))?;
    keep(shared, id, &image, previous.as_ref()).await?;
    let pushed = push_if_missing(shared, id, &pin, &image).await?;
    Ok(built(Status::UpToDate, &pin, &image, previous.as_ref(), pushed))
}

/// Pushes the pin of an image that is up to date here when pins are pushed and the registry
/// lacks it (built earlier without `--push`).
async fn push_if_missing(shared: &Shared, id: &NodeId, pin: &Pin, image: &ImageInspect) -> Result<bool, Failed> {
    let found = shared.found.get(&id.name).copied();
    if !shared.options.push || found.is_some_and(|f| f.registry) {
        return Ok(false);
    }
    push(shared, id, pin, image.id.as_deref().unwrap_or_default()).await?;
    Ok(true)
}

async fn in_registry(shared: &Shared, id: &NodeId) -> Result<Built, Failed> {
    let (pin, previous) = start(shared, id).await?;
    if !shared.options.pull.contains(&id.name) {
        return Ok(Built {
            status: Status::InRegistry,
            id: String::new(),
            pin: pin.reference(),
            digest: pin.digest.clone(),
            repository: pin.repository.clone(),
            size: 0,
            previous_size: None,
            pushed: false,
        });
    }
    let image = pull(shared, id, &pin).await?;
    keep(shared, id, &image, previous.as_ref()).await?;
    Ok(built(Status::Pulled, &pin, &image, previous.as_ref(), false))
}

/// Pulls `pin` (of `id` or of an image `id` is built on) and checks it is what it claims.
async fn pull(shared: &Shared, id: &NodeId, pin: &Pin) -> Result<ImageInspect, Failed> {
    let reference = pin.reference();
    shared.reporter.started(&id.name, &format!("pulling {reference}"));
    let credentials = crate::credentials::for_reference(&reference);
    let engine = shared.engine_for(id);
    let pulled = engine.pull(&reference, credentials.as_ref(), shared.platform_of(id)).await;
    let image = match pulled {
        Ok(()) => crate::cache::on_engine(engine, pin).await.map_err(Failed::new)?,
        Err(error) => {
            shared.reporter.finished(&id.name, "pull failed");
            return Err(Failed::new(format!("pulling {reference}: {error}")));
        }
    };
    shared.reporter.finished(&id.name, "pulled");
    image.ok_or_else(|| {
        Failed::new(format!("{reference} was pulled, but it does not carry the inputs digest {}", pin.digest))
    })
}

/// What `id` is built on, parent first, as `(build argument, reference, image ID)`: the pins of
/// its parent and dependencies, pulled first when they are only in the registry.
async fn upstream(
    shared: &Shared,
    id: &NodeId,
    inputs: &HashMap<String, Built>,
) -> Result<Vec<(String, String, String)>, Failed> {
    let spec = &shared.spec;
    let image = &spec.images[&id.image];
    let mut names: Vec<(String, &str)> = Vec::new();
    if let Some(parent) = image.parents.get(&id.variant) {
        names.push((spec.stack.parent_arg.clone(), parent.name()));
    }
    for dependency in &image.depends_on {
        names.push((Spec::dependency_arg(dependency), dependency.as_str()));
    }
    let mut out = Vec::new();
    for (arg, name) in names {
        if let Some(base) = shared.bases.get(&crate::identity::base_key(spec, name, &id.platform)) {
            out.push((arg, base.reference.clone(), base.id.clone()));
            continue;
        }
        let node = id.sibling(spec, name);
        let upstream = inputs.get(&node.name).ok_or_else(|| Failed::new(format!("`{name}` is not available")))?;
        let image_id = if upstream.status == Status::InRegistry {
            pull(shared, id, &shared.identities.nodes[&node.name]).await?.id.unwrap_or_default()
        } else {
            upstream.id.clone()
        };
        out.push((arg, upstream.pin.clone(), image_id));
    }
    Ok(out)
}

async fn build(shared: &Shared, id: &NodeId, inputs: &HashMap<String, Built>) -> Result<Built, Failed> {
    let (pin, previous) = start(shared, id).await?;
    let upstream = upstream(shared, id, inputs).await?;
    let request = request(shared, id, &pin, &upstream).await?;
    let reporter = &shared.reporter;
    reporter.started(&id.name, "building");
    let engine = shared.engine_for(id);
    let result = engine
        .build(request, |event| match event {
            BuildEvent::Step(step) => reporter.step(&id.name, &step),
            BuildEvent::Output(line) => reporter.output(&id.name, &line),
        })
        .await;
    let failed = |message: String| {
        let (step, tail) = reporter.finished(&id.name, "failed");
        Failed { message, step, tail, push: false }
    };
    let new_id = result.map_err(|error| failed(error.to_string()))?;
    let image = engine.image(&new_id).await.map_err(|e| failed(e.to_string()))?.unwrap_or_default();
    // An image over its size budget is not kept: no tag moves, the next build tries again
    // (from the layer cache).
    if let Some(problem) = super::over_budget(&shared.spec, id, image.size.unwrap_or_default()) {
        let _ = engine.remove_image(&new_id, false).await;
        reporter.finished(&id.name, "over its size budget");
        return Err(Failed::new(problem));
    }
    // Only now do tags move: the pin first, then the build tag.
    let tagged = async {
        engine.tag(&new_id, &pin.repository, &pin.tag()).await?;
        engine.tag(&new_id, &pin.repository, &super::build_tag(&shared.spec, id)).await
    }
    .await;
    tagged.map_err(|error| failed(error.to_string()))?;
    reporter.finished(&id.name, "built");
    let pushed = shared.options.push && shared.registry.is_on();
    if pushed {
        push(shared, id, &pin, &new_id).await?;
    }
    Ok(built(Status::Built, &pin, &ImageInspect { id: Some(new_id), ..image }, previous.as_ref(), pushed))
}

/// The BuildKit request: the context (whose digest must still be the one the identity was
/// computed from), build arguments with the upstream pins, labels, layer cache sources.
async fn request(
    shared: &Shared,
    id: &NodeId,
    pin: &Pin,
    upstream: &[(String, String, String)],
) -> Result<BuildRequest, Failed> {
    let spec = &shared.spec;
    let image = &spec.images[&id.image];
    let dockerfile = crate::identity::dockerfile_in_context(image);
    let generated = vec![Generated { path: CA_BUNDLE.to_string(), contents: shared.ca_bundle.clone() }];
    let (dir, file, filter) =
        (spec.dir.join(&image.dir), dockerfile.clone(), crate::identity::context_filter(spec, image));
    let context = tokio::task::spawn_blocking(move || context::archive(&dir, &file, &generated, &filter))
        .await
        .map_err(Failed::new)?
        .map_err(Failed::new)?;
    let args = spec.build_args(image, &id.variant);
    let upstream_digests = crate::identity::upstream_digests(spec, id, &shared.identities);
    if crate::identity::inputs_digest(id, &dockerfile, &context.digest, &args, &upstream_digests) != pin.digest {
        return Err(Failed::new(format!(
            "the files of {} changed while this run was building; run the build again",
            spec.dir.join(&image.dir).display()
        )));
    }
    let mut build_args: HashMap<String, String> = args.into_iter().collect();
    build_args.extend(upstream.iter().map(|(arg, reference, _)| (arg.clone(), reference.clone())));
    // Pins carry BuildKit's cache metadata, so any machine can use them as layer cache.
    build_args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
    Ok(BuildRequest {
        context: context.tar,
        dockerfile,
        build_args,
        labels: image_labels(
            shared,
            id,
            pin,
            upstream.first().map(|(_, reference, image_id)| format!("{reference}@{image_id}")),
        ),
        no_cache: shared.options.no_cache,
        cache_from: shared.cache_from.get(&id.name).cloned().unwrap_or_default(),
        name: id.name.clone(),
        platform: shared.platform_of(id).cloned(),
    })
}

/// The OCI annotations and the stack's own labels of a new image.
fn image_labels(shared: &Shared, id: &NodeId, pin: &Pin, parent: Option<String>) -> HashMap<String, String> {
    let spec = &shared.spec;
    let image = &spec.images[&id.image];
    let title = pin.repository.rsplit('/').next().unwrap_or(&pin.repository).to_string();
    let mut out = HashMap::from([
        (labels::TITLE.to_string(), title),
        (labels::VERSION.to_string(), spec.stack.tag_prefix.clone()),
        (labels::CREATED.to_string(), shared.created.clone()),
        (labels::IMAGE.to_string(), id.image.clone()),
        (labels::VARIANT.to_string(), id.variant.clone()),
        (labels::INPUTS.to_string(), pin.digest.clone()),
    ]);
    let optional = [
        (labels::DESCRIPTION, image.description.clone()),
        (labels::PARENT, parent.filter(|_| image.parents.contains_key(&id.variant))),
        (labels::REVISION, shared.options.revision.clone()),
        (labels::SOURCE, shared.options.source.clone()),
    ];
    out.extend(optional.into_iter().filter_map(|(key, value)| Some((key.to_string(), value?))));
    out
}

/// Pushes `pin` (naming image `image_id`) to the registry, trying transient failures again.
async fn push(shared: &Shared, id: &NodeId, pin: &Pin, image_id: &str) -> Result<(), Failed> {
    let reference = pin.reference();
    let reporter = &shared.reporter;
    reporter.note(&format!("{}: pushing {reference}", id.name));
    let pusher = crate::release::EnginePusher {
        engine: shared.engine_for(id),
        credentials: crate::credentials::for_reference(&reference),
    };
    let backoff = crate::release::Backoff::default();
    let pushed = crate::release::publish::push_with_retries(
        &pusher,
        image_id,
        &pin.repository,
        &pin.tag(),
        backoff,
        &mut |event| {
            if let crate::release::Event::Retrying { reference, error, pause } = event {
                reporter.note(&format!("{reference}: {error}; trying again in {} ms", pause.as_millis()));
            }
        },
    )
    .await;
    pushed.map_err(|error| Failed {
        message: format!("built and tagged here, but pushing {reference} failed: {error}"),
        step: None,
        tail: vec![],
        push: true,
    })
}
