//! Compilation: the checked ruleset to XDP and tcx programs.

pub mod actions;
pub mod limit;
pub mod log;
