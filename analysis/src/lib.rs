//! Pure, deterministic analysis: anomaly detectors, drift statistics, root-cause ranking.
//!
//! Nothing is implemented here yet; the foundation issue only reserves the crate so the
//! layering is visible. Later issues add one module per detector.

pub mod drift;
