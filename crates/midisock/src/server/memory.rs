//! Giving freed memory back to the operating system.

/// Called after the server frees a large buffer (a drained inbox).
pub(crate) fn return_free_memory() {}
