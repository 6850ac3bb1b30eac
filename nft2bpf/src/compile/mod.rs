//! Compilation: the checked ruleset to XDP and tcx programs.

pub mod actions;
