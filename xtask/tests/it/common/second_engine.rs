//! Another machine, played on this one: see [`xtask::fixture::engine`].

pub use xtask::fixture::engine::SecondEngine;
