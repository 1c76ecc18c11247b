//! The labels the stack puts on every image it builds: the OCI annotations
//! (`org.opencontainers.image.*`, what registries and scanners read) and the stack's own
//! (`xtask.stack.*`, what the tool reads back). One list, so the builder, `tag`, `docs` and the
//! tests agree on the names.

/// The image's name (`base-notebook-gpu`).
pub const TITLE: &str = "org.opencontainers.image.title";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
/// The stack's tag prefix (`2026.11`).
pub const VERSION: &str = "org.opencontainers.image.version";
/// When the image was built (RFC 3339).
pub const CREATED: &str = "org.opencontainers.image.created";
/// The commit it was built from.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// The repository it was built from.
pub const SOURCE: &str = "org.opencontainers.image.source";

/// The image's name in the spec.
pub const IMAGE: &str = "xtask.stack.image";
/// The variant it was built in.
pub const VARIANT: &str = "xtask.stack.variant";
/// What it was built on: `<reference>@<image ID>`.
pub const PARENT: &str = "xtask.stack.parent";
/// Its inputs digest (`sha256:...`): what its pin tag names.
pub const INPUTS: &str = "xtask.stack.inputs";
