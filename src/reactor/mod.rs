//! reactor: see docs/ARCHITECTURE.md.
