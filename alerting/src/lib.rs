//! Alerting and recording rules for pipewatch, pure (no I/O, no clock): the caller reads files
//! and passes their text, owns the storage, and says what time it is.
//!
//! - [`rulefile`]: Prometheus rule files (`groups:` of `record:`/`alert:` rules) loaded
//!   unchanged, pipewatch's own rule kinds as a `pipewatch:` key, and the checks
//!   `promtool check rules` makes, each error with `line:column` ([`parse`]).
//! - [`eval`]: a group evaluated at an instant over a [`query::Storage`], with Prometheus'
//!   alert states (pending, firing, `keep_firing_for`, resolved) and `ALERTS` /
//!   `ALERTS_FOR_STATE` series ([`GroupEvaluator`]).
//! - [`oncall`]: on-call schedules (who is on call when) and escalation policies, from YAML
//!   files.
//! - [`kinds`]: the `dq_check` and `drift` kinds decided from the latest stored results.
//! - [`backtest`]: a group replayed over stored history, step by step, as the engine would
//!   have evaluated it.
//! - [`template`]: the Go-template subset alert labels and annotations use.
//! - [`unittest`]: Prometheus' rule unit-test files (`promtool test rules`), run with the same
//!   verdicts ([`unittest::run`]).

pub mod backtest;
pub mod duration;
pub mod eval;
mod gofmt;
pub mod kinds;
pub mod oncall;
pub mod rulefile;
pub mod template;
pub mod unittest;
pub mod yaml;

pub use eval::{Alert, AlertState, EvalOptions, Evaluation, GroupEvaluator};
pub use rulefile::{parse, Diagnostic, Parsed, PipewatchKind, Rule, RuleFile, RuleGroup, RuleType};
