//! Prometheus relabelling (`relabel_configs`, `metric_relabel_configs`): the rules users copy
//! from their prometheus.yml, with Prometheus' field names, defaults and semantics.
//!
//! Follows `model/relabel/relabel.go` of Prometheus: regexes are anchored at both ends and
//! compiled once when the config is read (`^(?s:<regex>)$`), `$1` / `${name}` expand as in Go's
//! `regexp.Expand` (the Rust regex crate uses the same syntax), an empty value removes a label,
//! and a rule that drops the label set stops the chain. Label names are checked with the classic
//! `[a-zA-Z_][a-zA-Z0-9_]*` rule (Prometheus 2.x "legacy" validation).

use md5::{Digest, Md5};
use model::{Labels, SeriesKey};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// What a rule does; names as in Prometheus (`action: labelmap`), case-insensitive when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Writes `replacement` (with `$n` expanded) into `target_label` when `regex` matches.
    #[default]
    Replace,
    /// Drops the label set unless `regex` matches the joined source labels.
    Keep,
    /// Drops the label set when `regex` matches the joined source labels.
    Drop,
    /// Drops the label set unless the joined source labels equal `target_label`'s value.
    KeepEqual,
    /// Drops the label set when the joined source labels equal `target_label`'s value.
    DropEqual,
    /// Sets `target_label` to the md5 of the joined source labels modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches `regex` to the name `replacement` expands to.
    LabelMap,
    /// Removes every label whose name matches `regex`.
    LabelDrop,
    /// Removes every label whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the joined source labels in lower case.
    Lowercase,
    /// Sets `target_label` to the joined source labels in upper case.
    Uppercase,
}

const ACTIONS: [(&str, Action); 11] = [
    ("replace", Action::Replace),
    ("keep", Action::Keep),
    ("drop", Action::Drop),
    ("keepequal", Action::KeepEqual),
    ("dropequal", Action::DropEqual),
    ("hashmod", Action::HashMod),
    ("labelmap", Action::LabelMap),
    ("labeldrop", Action::LabelDrop),
    ("labelkeep", Action::LabelKeep),
    ("lowercase", Action::Lowercase),
    ("uppercase", Action::Uppercase),
];

impl Action {
    pub fn as_str(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .expect("every action is listed")
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = RelabelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        ACTIONS
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, a)| *a)
            .ok_or_else(|| RelabelError::UnknownAction(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A relabelling regex: kept as written, matched anchored at both ends, as Prometheus does.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    anchored: Regex,
}

impl RelabelRegex {
    pub fn new(source: &str) -> Result<Self, RelabelError> {
        let anchored =
            Regex::new(&format!("^(?s:{source})$")).map_err(|e| RelabelError::BadRegex {
                regex: source.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            source: source.to_string(),
            anchored,
        })
    }

    /// The regex as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.anchored.is_match(s)
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        Self::new(DEFAULT_REGEX).expect("the default regex compiles")
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelabelRegex::new(&s).map_err(serde::de::Error::custom)
    }
}

pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabelling rule, field for field Prometheus' `relabel_config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` and matched against `regex`.
    pub source_labels: Vec<String>,
    /// Default `;`.
    pub separator: String,
    /// Default `(.*)`; anchored at both ends.
    pub regex: RelabelRegex,
    /// For `hashmod`.
    pub modulus: u64,
    /// Label written by `replace`, `hashmod`, `lowercase`, `uppercase`; compared by
    /// `keepequal`/`dropequal`. `replace` may use `$1` / `${name}` in it.
    pub target_label: String,
    /// Default `$1`.
    pub replacement: String,
    /// Default `replace`.
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

/// A rule that cannot work; the messages follow Prometheus' wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    #[error("unknown relabel action {0:?}; use one of replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase")]
    UnknownAction(String),
    #[error("regex {regex:?} does not compile: {reason}")]
    BadRegex { regex: String, reason: String },
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    MissingModulus,
    #[error("{label:?} is invalid 'target_label' for {action} action; label names match [a-zA-Z_][a-zA-Z0-9_]*")]
    BadTargetLabel { label: String, action: Action },
    #[error("{replacement:?} is invalid 'replacement' for labelmap action; it must expand to a label name")]
    BadLabelMapReplacement { replacement: String },
    #[error(
        "{0:?} in 'source_labels' is not a label name; label names match [a-zA-Z_][a-zA-Z0-9_]*"
    )]
    BadSourceLabel(String),
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{0} action requires only 'source_labels' and 'target_label', and no other fields")]
    OnlySourceAndTarget(Action),
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(Action),
}

impl RelabelConfig {
    /// Checks what Prometheus checks when it loads the config (`Config.Validate`).
    pub fn validate(&self) -> Result<(), RelabelError> {
        use Action::*;
        let a = self.action;
        for l in &self.source_labels {
            if !is_label_name(l) {
                return Err(RelabelError::BadSourceLabel(l.clone()));
            }
        }
        if a == HashMod && self.modulus == 0 {
            return Err(RelabelError::MissingModulus);
        }
        let needs_target = matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(RelabelError::MissingTargetLabel(a));
        }
        let bad_target = || RelabelError::BadTargetLabel {
            label: self.target_label.clone(),
            action: a,
        };
        if a == Replace {
            let ok = if self.target_label.contains('$') {
                is_label_name_template(&self.target_label)
            } else {
                is_label_name(&self.target_label)
            };
            if !ok {
                return Err(bad_target());
            }
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual | HashMod)
            && !is_label_name(&self.target_label)
        {
            return Err(bad_target());
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err(RelabelError::ReplacementNotAllowed(a));
        }
        if a == LabelMap && !is_label_name_template(&self.replacement) {
            return Err(RelabelError::BadLabelMapReplacement {
                replacement: self.replacement.clone(),
            });
        }
        if matches!(a, KeepEqual | DropEqual)
            && (self.regex.as_str() != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(RelabelError::OnlySourceAndTarget(a));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(RelabelError::OnlyRegex(a));
        }
        Ok(())
    }

    /// Applies this rule to `lb`; false means the label set is dropped.
    fn apply(&self, lb: &mut Labels) -> bool {
        let val = self
            .source_labels
            .iter()
            .map(|n| lb.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&self.separator);
        match self.action {
            Action::Drop => {
                if self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::Keep => {
                if !self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::DropEqual => {
                if lb.get(&self.target_label).unwrap_or("") == val {
                    return false;
                }
            }
            Action::KeepEqual => {
                if lb.get(&self.target_label).unwrap_or("") != val {
                    return false;
                }
            }
            Action::Replace => {
                // No match: nothing is replaced.
                let Some(caps) = self.regex.anchored.captures(&val) else {
                    return true;
                };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !is_label_name(&target) {
                    return true;
                }
                let mut res = String::new();
                caps.expand(&self.replacement, &mut res);
                if res.is_empty() {
                    lb.remove(&target);
                } else {
                    lb.insert(target, res);
                }
            }
            Action::Lowercase => lb.insert(self.target_label.clone(), val.to_lowercase()),
            Action::Uppercase => lb.insert(self.target_label.clone(), val.to_uppercase()),
            Action::HashMod => {
                let hash = Md5::digest(val.as_bytes());
                // Prometheus uses the last 8 bytes, big-endian, so shards agree with it.
                let tail: [u8; 8] = hash[8..].try_into().expect("md5 is 16 bytes");
                let m = u64::from_be_bytes(tail) % self.modulus;
                lb.insert(self.target_label.clone(), m.to_string());
            }
            Action::LabelMap => {
                let snapshot: Vec<(String, String)> = lb
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                for (name, value) in snapshot {
                    if self.regex.is_match(&name) {
                        let new_name = self
                            .regex
                            .anchored
                            .replace_all(&name, self.replacement.as_str());
                        lb.insert(new_name.into_owned(), value);
                    }
                }
            }
            Action::LabelDrop | Action::LabelKeep => {
                let keep_matching = self.action == Action::LabelKeep;
                let names: Vec<String> = lb.iter().map(|(k, _)| k.to_string()).collect();
                for name in names {
                    if self.regex.is_match(&name) != keep_matching {
                        lb.remove(&name);
                    }
                }
            }
        }
        true
    }
}

/// Applies `rules` in order. `None` when a rule drops the label set (Prometheus'
/// `relabel.Process`).
pub fn relabel(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut lb = labels.clone();
    for r in rules {
        if !r.apply(&mut lb) {
            return None;
        }
    }
    Some(lb)
}

/// Relabels one series (`metric_relabel_configs`): the rules see the metric name as
/// `__name__`. `None` when a rule drops the series or removes its name.
pub fn relabel_series(key: &SeriesKey, rules: &[RelabelConfig]) -> Option<SeriesKey> {
    let mut lb = key.labels.clone();
    lb.insert(METRIC_NAME_LABEL, key.metric.clone());
    let mut out = relabel(&lb, rules)?;
    let metric = out.remove(METRIC_NAME_LABEL)?;
    Some(SeriesKey::new(metric, out))
}

/// The label that carries a series' metric name while it is relabelled.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// Validates every rule; the error says which one (by index) is wrong.
pub fn validate_all(rules: &[RelabelConfig]) -> Result<(), (usize, RelabelError)> {
    for (i, r) in rules.iter().enumerate() {
        r.validate().map_err(|e| (i, e))?;
    }
    Ok(())
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A label name that may contain `$name` / `${name}` references (Prometheus'
/// `relabelTargetLegacy`: `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`).
fn is_label_name_template(s: &str) -> bool {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        // `(?-u)`: Go's `\w` is ASCII-only.
        Regex::new(r"(?-u)^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("static regex")
    })
    .is_match(s)
}
