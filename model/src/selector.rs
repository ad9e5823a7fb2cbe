//! Prometheus series selectors (`metric{label="v", other=~"re.*"}`): parsing and matching.
//!
//! Matching follows Prometheus: regexes are fully anchored, and a matcher against the empty
//! string also matches series that lack the label.
//!
//! A selector comes from a URL, so what it may cost is bounded here: every regex is compiled
//! with [`REGEX_SIZE_LIMIT`] (the regex crate's default of 10 MiB let 100 matchers like
//! `a=~".{9999}"` take a gigabyte) and a selector holds at most
//! [`MAX_MATCHERS_PER_SELECTOR`] matchers. The query crate checks PromQL's regexes with
//! [`compile_regex`] too.

use crate::clip::{clip, MESSAGE_VALUE_BYTES};
use crate::labels::SeriesKey;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Neq => "!=",
            Self::Re => "=~",
            Self::Nre => "!~",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Bytes a compiled matcher regex may take (its program), and the budget of its lazy DFA
/// cache. 1 MiB holds any alternation of a few thousand names, far beyond what dashboards
/// send, while 100 hostile matchers stay near 200 MB instead of 2 GB.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Matchers one selector may hold. A series has at most 64 labels by default
/// (`limits.max_labels_per_series`), so more matchers than that only repeat themselves; the
/// cap bounds the matching work per series and the regexes compiled per request.
pub const MAX_MATCHERS_PER_SELECTOR: usize = 64;

/// Why a matcher regex was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexRefusal {
    /// Not a valid regular expression (the regex crate's message).
    Syntax(String),
    /// Valid, but its compiled form is over [`REGEX_SIZE_LIMIT`].
    TooBig,
}

/// Compiles a matcher's pattern fully anchored, as Prometheus does, within
/// [`REGEX_SIZE_LIMIT`].
pub fn compile_regex(pattern: &str) -> Result<Regex, RegexRefusal> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => RegexRefusal::TooBig,
            e => RegexRefusal::Syntax(e.to_string()),
        })
}

/// The 400 message for a matcher whose regex compiles over [`REGEX_SIZE_LIMIT`]: names the
/// matcher (cut to 200 bytes) and what to do instead.
pub fn regex_too_big_message(name: &str, op: &str, pattern: &str) -> String {
    format!(
        "the regular expression of matcher {}{op}{:?} compiles to more than {} KiB; use a shorter pattern (fewer or smaller counted repetitions like .{{9999}}, or several selectors)",
        clip(name, MESSAGE_VALUE_BYTES),
        clip(pattern, MESSAGE_VALUE_BYTES),
        REGEX_SIZE_LIMIT / 1024
    )
}

impl LabelMatcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, SelectorError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => Some(compile_regex(&value).map_err(|e| match e {
                RegexRefusal::TooBig => {
                    SelectorError::new(regex_too_big_message(&name, op.as_str(), &value))
                }
                RegexRefusal::Syntax(e) => SelectorError::new(format!(
                    "invalid regular expression {:?} for label {:?}: {e}",
                    clip(&value, MESSAGE_VALUE_BYTES),
                    clip(&name, MESSAGE_VALUE_BYTES)
                )),
            })?),
            _ => None,
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    /// Whether a label value (None = label absent) satisfies the matcher.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Neq => v != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::Nre => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// A parsed series selector. `metric` is None when the name is given only as a `__name__`
/// matcher or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub metric: Option<String>,
    pub matchers: Vec<LabelMatcher>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct SelectorError {
    pub message: String,
}

impl SelectorError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl Selector {
    /// Parses `name`, `name{...}` or `{...}`. At least one matcher or a name is required, and
    /// (as in Prometheus) at least one of them must not match the empty string.
    ///
    /// ```
    /// use model::{Labels, SeriesKey, Selector};
    ///
    /// let sel = Selector::parse(r#"rows_total{stage=~"trans.*", env!="dev"}"#).unwrap();
    /// assert_eq!(sel.metric.as_deref(), Some("rows_total"));
    /// let key = |stage: &str| {
    ///     SeriesKey::new("rows_total", Labels::from_pairs([("stage", stage), ("env", "prod")]))
    /// };
    /// assert!(sel.matches(&key("transform")));
    /// // Regexes are anchored as in Prometheus: "trans.*" does not match "retransform".
    /// assert!(!sel.matches(&key("retransform")));
    ///
    /// // Matching only the empty string would select every series: refused, with an example.
    /// let err = Selector::parse(r#"{job=""}"#).unwrap_err();
    /// assert!(err.to_string().contains("e.g. up{job="), "{err}");
    /// ```
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut p = Parser { s: input, pos: 0 };
        p.skip_ws();
        let metric = p.ident(true);
        p.skip_ws();
        let mut matchers = Vec::new();
        if p.eat('{') {
            loop {
                p.skip_ws();
                if p.eat('}') {
                    break;
                }
                let name = p
                    .ident(false)
                    .ok_or_else(|| p.err("expected a label name like job"))?;
                p.skip_ws();
                let op = if p.eat_str("=~") {
                    MatchOp::Re
                } else if p.eat_str("!=") {
                    MatchOp::Neq
                } else if p.eat_str("!~") {
                    MatchOp::Nre
                } else if p.eat('=') {
                    MatchOp::Eq
                } else {
                    return Err(p.err(&format!("expected one of = != =~ !~ after label {name:?}")));
                };
                p.skip_ws();
                let value = p.string()?;
                if name.contains('\0') || value.contains('\0') {
                    // PostgreSQL text cannot hold NUL, so no stored series has one; passing it
                    // on made the database refuse the lookup and the client see a 503.
                    return Err(p.err(&format!(
                        "the matcher of label {:?} holds a NUL byte (0x00), which no stored series can have; remove it",
                        clip(&name, MESSAGE_VALUE_BYTES)
                    )));
                }
                if matchers.len() == MAX_MATCHERS_PER_SELECTOR {
                    return Err(p.err(&format!(
                        "more than {MAX_MATCHERS_PER_SELECTOR} label matchers in one selector; merge values into one regex (a=~\"x|y\") or split the request"
                    )));
                }
                matchers.push(LabelMatcher::new(name, op, value)?);
                p.skip_ws();
                if p.eat(',') {
                    continue;
                }
                if p.eat('}') {
                    break;
                }
                return Err(p.err("expected , or } after a label matcher"));
            }
        }
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(p.err("unexpected text after the selector; only a metric name and {label matchers} are supported"));
        }
        let mut metric = metric;
        // `{__name__="x"}` is the same as `x`.
        if metric.is_none() {
            if let Some(i) = matchers
                .iter()
                .position(|m| m.name == "__name__" && m.op == MatchOp::Eq)
            {
                metric = Some(matchers.remove(i).value);
            }
        }
        if metric.is_none() && matchers.iter().all(|m| m.matches(None)) {
            return Err(SelectorError::new(
                "selector must contain a metric name or at least one label matcher that does not match the empty string, e.g. up{job=\"demo\"}",
            ));
        }
        Ok(Self { metric, matchers })
    }

    /// Whether the series is selected.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        if let Some(m) = &self.metric {
            if &key.metric != m {
                return false;
            }
        }
        self.matchers.iter().all(|m| {
            if m.name == "__name__" {
                m.matches(Some(&key.metric))
            } else {
                m.matches(key.labels.get(&m.name))
            }
        })
    }
}

impl fmt::Display for Selector {
    /// Text [`Selector::parse`] reads back as the same selector. A metric name that is not
    /// an identifier (`{__name__="a b"}` selects one) is written as a `__name__` matcher.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted_name = self.metric.as_deref().filter(|m| !is_metric_name(m));
        if let Some(m) = self.metric.as_deref().filter(|m| is_metric_name(m)) {
            f.write_str(m)?;
        }
        if !self.matchers.is_empty() || self.metric.is_none() || quoted_name.is_some() {
            f.write_str("{")?;
            let mut first = true;
            if let Some(m) = quoted_name {
                f.write_str("__name__=")?;
                write_quoted(f, m)?;
                first = false;
            }
            for m in &self.matchers {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{}{}", m.name, m.op.as_str())?;
                write_quoted(f, &m.value)?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, what the parser takes as a bare metric name.
fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `"value"` escaped the way `Parser::string` reads it back (Rust's `{:?}` wrote `\u{1b}` and
/// `\r`, which read back as other text).
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }
    fn skip_ws(&mut self) {
        let t = self.rest().trim_start();
        self.pos = self.s.len() - t.len();
    }
    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn eat_str(&mut self, t: &str) -> bool {
        if self.rest().starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }
    /// Metric names may contain `:`, label names may not.
    fn ident(&mut self, metric: bool) -> Option<String> {
        let r = self.rest();
        let end = r
            .char_indices()
            .find(|&(i, c)| {
                !(c == '_'
                    || c.is_ascii_alphabetic()
                    || (i > 0 && c.is_ascii_digit())
                    || (metric && c == ':'))
            })
            .map(|(i, _)| i)
            .unwrap_or(r.len());
        if end == 0 {
            return None;
        }
        let id = r[..end].to_string();
        self.pos += end;
        Some(id)
    }
    fn string(&mut self) -> Result<String, SelectorError> {
        let quote = match self.rest().chars().next() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return Err(self.err("expected a quoted label value like \"api\"")),
        };
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Ok(out);
            }
            if c == '\\' && quote != '`' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e)) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err(self.err("unterminated label value: add the closing quote"))
    }
    fn err(&self, what: &str) -> SelectorError {
        SelectorError::new(format!(
            "bad selector {:?} at character {}: {what}",
            clip(self.s, MESSAGE_VALUE_BYTES),
            self.pos + 1
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labels;

    fn key(m: &str, l: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(m, Labels::from_pairs(l.iter().copied()))
    }

    #[test]
    fn parses_all_four_operators() {
        let s = Selector::parse(
            r#"http_requests_total{job="api", code!="200", path=~"/v1/.*",method!~'GET|HEAD'}"#,
        )
        .unwrap();
        assert_eq!(s.metric.as_deref(), Some("http_requests_total"));
        let ops: Vec<_> = s.matchers.iter().map(|m| m.op).collect();
        assert_eq!(
            ops,
            vec![MatchOp::Eq, MatchOp::Neq, MatchOp::Re, MatchOp::Nre]
        );
        assert!(s.matches(&key(
            "http_requests_total",
            &[
                ("job", "api"),
                ("code", "500"),
                ("path", "/v1/x"),
                ("method", "POST")
            ]
        )));
        assert!(!s.matches(&key(
            "http_requests_total",
            &[
                ("job", "api"),
                ("code", "500"),
                ("path", "/v2/x"),
                ("method", "POST")
            ]
        )));
        assert!(!s.matches(&key(
            "http_requests_total",
            &[
                ("job", "api"),
                ("code", "500"),
                ("path", "/v1/x"),
                ("method", "GET")
            ]
        )));
    }

    #[test]
    fn regex_is_anchored_and_empty_matches_missing_label() {
        let s = Selector::parse(r#"m{a=~"x", b=""}"#).unwrap();
        assert!(s.matches(&key("m", &[("a", "x")])));
        assert!(!s.matches(&key("m", &[("a", "xx")])));
        assert!(!s.matches(&key("m", &[("a", "x"), ("b", "1")])));
    }

    #[test]
    fn name_matcher_is_the_metric_name() {
        let s = Selector::parse(r#"{__name__="up", job="x"}"#).unwrap();
        assert_eq!(s.metric.as_deref(), Some("up"));
        assert_eq!(s.to_string(), r#"up{job="x"}"#);
        // Found by fuzzing: a name that is not an identifier prints as a matcher again.
        let s = Selector::parse(r#"{__name__="a b|c"}"#).unwrap();
        assert_eq!(s.to_string(), r#"{__name__="a b|c"}"#);
        assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn rejects_bad_selectors_with_a_reason() {
        for (input, needle) in [
            ("", "metric name or at least one label matcher"),
            ("m{a=\"x\"", "expected , or }"),
            ("m{a~\"x\"}", "expected one of"),
            ("m{a=\"x}", "unterminated"),
            ("m{a=~\"(\"}", "invalid regular expression"),
            ("rate(m[5m])", "unexpected text"),
            ("{a=~\".*\"}", "does not match the empty string"),
            ("m{a=\"x\0y\"}", "holds a NUL byte"),
        ] {
            let err = Selector::parse(input).unwrap_err();
            assert!(err.message.contains(needle), "{input:?}: {}", err.message);
        }
    }

    #[test]
    fn regexes_over_the_size_limit_are_refused_naming_the_matcher() {
        let err = Selector::parse(r#"x{ok="1", a=~".{9999}"}"#).unwrap_err();
        assert!(
            err.message
                .contains(r#"matcher a=~".{9999}" compiles to more than 1024 KiB"#),
            "{}",
            err.message
        );
        // The same pattern small enough compiles and anchors.
        let s = Selector::parse(r#"x{a=~".{3}"}"#).unwrap();
        assert!(s.matches(&key("x", &[("a", "abc")])));
        assert!(!s.matches(&key("x", &[("a", "abcd")])));
    }

    #[test]
    fn matchers_per_selector_are_capped_and_long_selectors_clipped_in_errors() {
        let many = |n: usize| {
            let m: Vec<String> = (0..n).map(|i| format!("l{i}=\"v\"")).collect();
            format!("x{{{}}}", m.join(","))
        };
        assert!(Selector::parse(&many(MAX_MATCHERS_PER_SELECTOR)).is_ok());
        let err = Selector::parse(&many(MAX_MATCHERS_PER_SELECTOR + 1)).unwrap_err();
        assert!(
            err.message.contains("more than 64 label matchers"),
            "{}",
            err.message
        );
        assert!(err.message.len() < 600, "{}", err.message.len());
        assert!(err.message.contains(" bytes)"), "{}", err.message);
    }
}
