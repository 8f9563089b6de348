//! services: see docs/ARCHITECTURE.md.
