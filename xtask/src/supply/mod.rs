//! The supply chain of the stack's images: what is inside each (`inventory`), bills of
//! materials from it (`sbom`: CycloneDX 1.5 and SPDX 2.3), build provenance (`provenance`:
//! in-toto with SLSA v1), signatures cosign accepts (`sign`), how these travel with an image in
//! a registry (`attach`: OCI artifacts by referrers or by cosign's tag scheme), and pending
//! security updates (`security`). All pure but `collect`, which runs things in images.
//! `release` attaches the documents (see [`crate::release::attach`]); `sbom`, `verify` and the
//! harness's security trials are the other users.

pub mod attach;
pub mod collect;
pub mod files;
pub mod inventory;
pub mod provenance;
pub mod run;
pub mod sbom;
pub mod security;
pub mod sign;
pub mod verify;

use std::path::PathBuf;

use crate::engine::EngineError;
use crate::error::{ExitCode, NotBuilt};
use crate::registry::RegistryError;

/// How `sbom` and the security check fail.
#[derive(Debug, thiserror::Error)]
pub enum SupplyError {
    #[error(transparent)]
    NotBuilt(#[from] NotBuilt),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Documents(#[from] collect::DocumentsError),
    #[error(transparent)]
    Key(#[from] sign::KeyError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("interrupted: the containers this run started were removed")]
    Interrupted,
}

impl SupplyError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            SupplyError::NotBuilt(_) => ExitCode::NotBuilt,
            SupplyError::Engine(_) | SupplyError::Documents(collect::DocumentsError::Engine(_)) => ExitCode::Engine,
            SupplyError::Documents(collect::DocumentsError::Sbom(_)) | SupplyError::Write { .. } => ExitCode::Failure,
            SupplyError::Key(_) => ExitCode::Usage,
            SupplyError::Registry(_) => ExitCode::Registry,
            SupplyError::Interrupted => ExitCode::Interrupted,
        }
    }
}
