//! A real registry for tests: see [`xtask::fixture::registry`].

pub use xtask::fixture::registry::Registry;
