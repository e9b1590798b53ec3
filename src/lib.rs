//! Holds no code: the root package exists for `tests/` and `benches/` (see Cargo.toml).
