//! Network-namespace test harness (work in progress).
