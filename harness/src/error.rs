//! How a trial fails: the harness's one error type. A failed expectation carries what was
//! expected and what came out; an engine failure keeps the engine's error (which operation, on
//! what); a test file that cannot run says which file and why. Cloneable, because one failure
//! to start an image's container fails every trial that shares it.

use std::sync::Arc;

use xtask::engine::EngineError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A check ran and what came out is not what it expects.
    #[error("{0}")]
    Failed(String),
    /// The engine could not do what a check needs (start a container, run a command).
    #[error(transparent)]
    Engine(Arc<EngineError>),
    /// A test file asks for something that cannot run (an unreadable script, a bad pattern).
    #[error("{0}")]
    Test(String),
    /// The images under test are missing or did not build.
    #[error("{0}")]
    Images(String),
    /// This trial needs what this host does not have.
    #[error("{0}")]
    Unsupported(String),
    /// The harness itself failed: a bug.
    #[error("the harness itself failed (a bug: please report it): {0}")]
    Bug(String),
}

impl From<EngineError> for Error {
    fn from(error: EngineError) -> Error {
        Error::Engine(Arc::new(error))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
