//! Label matchers as Alertmanager writes them (`severity="critical"`, `job=~"etl.*"`,
//! `team!=data`), for routes, silences and the alert list's filters. Regexes are anchored at
//! both ends, as in Alertmanager and Prometheus.

use regex::Regex;
use std::collections::BTreeMap;
use std::fmt;
use store::lifecycle::SilenceMatcher;

/// `=`, `!=`, `=~` or `!~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    Re,
    NotRe,
}

/// One compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "=",
            Op::NotEq => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

impl Matcher {
    pub fn new(name: &str, op: Op, value: &str) -> Result<Matcher, String> {
        if !query::value::is_label_name(name) {
            return Err(format!(
                "{name:?} is not a label name (letters, digits and _, not starting with a digit)"
            ));
        }
        let re = match op {
            Op::Re | Op::NotRe => Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                format!("the regex {value:?} of label {name} does not compile: {e}")
            })?),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Parses `name<op>value`, the value optionally in double quotes (with `\"` and `\\`).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let t = text.trim();
        let hint = "write a matcher like severity=\"critical\", job=~\"etl.*\" or team!=data";
        let at = t
            .find(['=', '!'])
            .ok_or_else(|| format!("{t:?} has no operator (=, !=, =~, !~); {hint}"))?;
        let name = t[..at].trim();
        let rest = &t[at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (Op::Re, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (Op::NotRe, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (Op::NotEq, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (Op::Eq, v)
        } else {
            return Err(format!("{t:?} has no operator (=, !=, =~, !~); {hint}"));
        };
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"') {
            let inner = inner
                .strip_suffix('"')
                .ok_or_else(|| format!("{t:?}: the quoted value has no closing quote; {hint}"))?;
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(e) => out.push(e),
                        None => return Err(format!("{t:?}: the value ends in a backslash")),
                    }
                } else {
                    out.push(c);
                }
            }
            out
        } else {
            value.to_string()
        };
        Matcher::new(name, op, &value).map_err(|e| format!("{t:?}: {e}"))
    }

    /// From a silence's stored matcher.
    pub fn from_silence(m: &SilenceMatcher) -> Result<Matcher, String> {
        let op = match (m.is_regex, m.is_equal) {
            (false, true) => Op::Eq,
            (false, false) => Op::NotEq,
            (true, true) => Op::Re,
            (true, false) => Op::NotRe,
        };
        Matcher::new(&m.name, op, &m.value)
    }

    /// Whether `labels` satisfy the matcher; a missing label is the empty string.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match self.op {
            Op::Eq => v == self.value,
            Op::NotEq => v != self.value,
            Op::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            Op::NotRe => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// Whether every matcher holds.
pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator_quoted_or_not_and_anchors_regexes() {
        let l = labels(&[("job", "etl-orders"), ("severity", "critical")]);
        for (text, want) in [
            ("severity=critical", true),
            ("severity=\"critical\"", true),
            ("severity != \"critical\"", false),
            ("job=~\"etl-.*\"", true),
            // Anchored: a partial match is no match.
            ("job=~etl", false),
            ("job!~\"etl.*\"", false),
            ("team=\"\"", true),
            ("team!=\"\"", false),
        ] {
            let m = Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.matches(&l), want, "{text}");
        }
        let m = Matcher::parse(r#"msg="say \"hi\"""#).unwrap();
        assert_eq!(m.value, "say \"hi\"");
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        let e = Matcher::parse("severity").unwrap_err();
        assert!(e.contains("no operator"), "{e}");
        let e = Matcher::parse("1x=a").unwrap_err();
        assert!(e.contains("not a label name"), "{e}");
        let e = Matcher::parse("job=~\"(\"").unwrap_err();
        assert!(e.contains("does not compile"), "{e}");
        let e = Matcher::parse("job=\"open").unwrap_err();
        assert!(e.contains("closing quote"), "{e}");
    }
}
