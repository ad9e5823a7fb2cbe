//! Pure, deterministic analysis: anomaly detectors and their verdicts, distribution drift
//! statistics over mergeable column profiles, and the NAB benchmark's text formats. No I/O and no
//! clock: callers hand in series (and "now" where it matters) and get results back, so every
//! result can be reproduced from its inputs.

pub mod detect;
pub mod drift;
pub mod nab;
pub mod verdict;

pub use verdict::{Severity, SignalKind, Verdict};
