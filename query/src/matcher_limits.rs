//! Bounds on a query's label matchers, checked on the query text *before* promql-parser sees
//! it: the parser compiles every `=~`/`!~` regex itself with the regex crate's default limit
//! (10 MiB of program each), so a 64 KB URL of `x{a=~".{9999}"}` matchers cost gigabytes
//! before evaluation could refuse anything.
//!
//! The scan is a small lexer (strings, comments, braces) that finds each regex matcher's
//! pattern, unquotes it as the parser will and compiles it with
//! [`model::selector::compile_regex`] (1 MiB program and DFA limit). Syntax errors are left to
//! the parser, which reports them with a position; only size and count are refused here.

use crate::error::{QueryError, Result};
use model::clip::{clip, MESSAGE_VALUE_BYTES};
use model::selector::{
    compile_regex, regex_too_big_message, RegexRefusal, MAX_MATCHERS_PER_SELECTOR,
};

/// Regex matchers one query may hold. Each may compile to up to 1 MiB (plus as much DFA
/// cache), so this bounds what one query's regexes take to about 128 MiB; real dashboards
/// use a handful.
pub const MAX_REGEX_MATCHERS_PER_QUERY: usize = 64;

/// Refuses (as `bad_data`) a query with a regex matcher over the size limit, more than
/// [`MAX_REGEX_MATCHERS_PER_QUERY`] regex matchers, or a selector with more than
/// [`MAX_MATCHERS_PER_SELECTOR`] matchers.
pub fn check(query: &str) -> Result<()> {
    let b = query.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut in_selector = 0usize;
    let mut regexes = 0usize;
    // The operator of a regex matcher whose pattern is the next string, and its label name.
    let mut pending: Option<(&'static str, String)> = None;
    let mut last_name = String::new();
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'' | b'`') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                        // Go's strconv (Prometheus) has no such escape, and promql-parser
                        // 0.11 panics on it (found by the query_params fuzz target).
                        if b.get(i).is_some_and(|c| !c.is_ascii()) {
                            return Err(QueryError::BadData(
                                "unknown escape sequence: a backslash before a non-ASCII character in a string; write the character without the backslash".into(),
                            ));
                        }
                    }
                    i += 1;
                }
                let end = (i + 1).min(b.len());
                let literal = &query[start..floor(query, end)];
                if depth > 0 && literal.contains('\0')
                    || depth > 0
                        && literal.contains("\\x00")
                        && unquote(literal).is_some_and(|v| v.contains('\0'))
                {
                    // PostgreSQL text cannot hold NUL, so no series has one; let through, the
                    // database refuses the lookup and the client saw a 500.
                    return Err(QueryError::BadData(format!(
                        "label matcher value {} holds a NUL byte (0x00), which no stored series can have; remove it",
                        clip(literal, MESSAGE_VALUE_BYTES).replace('\0', "\\0")
                    )));
                }
                if let Some((op, name)) = pending.take() {
                    if let Some(pattern) = unquote(literal) {
                        if matches!(compile_regex(&pattern), Err(RegexRefusal::TooBig)) {
                            return Err(QueryError::BadData(regex_too_big_message(
                                &name, op, &pattern,
                            )));
                        }
                    }
                } else {
                    // A quoted label name (`{"service.name"="x"}`) names the next matcher.
                    last_name = literal.trim_matches(q as char).to_string();
                }
            }
            b'{' => {
                depth += 1;
                in_selector = 0;
            }
            b'}' => depth = depth.saturating_sub(1),
            b'=' | b'!' if depth > 0 => {
                let op = match (b[i], b.get(i + 1)) {
                    (b'=', Some(b'~')) => "=~",
                    (b'!', Some(b'~')) => "!~",
                    (b'!', Some(b'=')) => "!=",
                    (b'=', _) => "=",
                    _ => "",
                };
                if !op.is_empty() {
                    in_selector += 1;
                    if in_selector > MAX_MATCHERS_PER_SELECTOR {
                        return Err(QueryError::BadData(format!(
                            "more than {MAX_MATCHERS_PER_SELECTOR} label matchers in one selector (at {}); merge values into one regex (a=~\"x|y\") or split the query",
                            clip(&last_name, MESSAGE_VALUE_BYTES)
                        )));
                    }
                    if op.ends_with('~') {
                        regexes += 1;
                        if regexes > MAX_REGEX_MATCHERS_PER_QUERY {
                            return Err(QueryError::BadData(format!(
                                "more than {MAX_REGEX_MATCHERS_PER_QUERY} regex matchers (=~, !~) in one query; merge them (a=~\"x|y\") or split the query"
                            )));
                        }
                        pending = Some((op, std::mem::take(&mut last_name)));
                    }
                    i += op.len() - 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == b'_') {
                    i += 1;
                }
                last_name = query[start..=i].to_string();
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The string a quoted literal stands for, as the parser reads it; `None` when it is not a
/// valid literal. promql-parser 0.11's `unquote_string` panics on a backslash before a
/// multi-byte character (found by the `query_params` fuzz target), so a panic is `None` too.
fn unquote(literal: &str) -> Option<String> {
    std::panic::catch_unwind(|| promql_parser::util::unquote_string(literal))
        .ok()
        .and_then(|r| r.ok())
}

fn floor(s: &str, i: usize) -> usize {
    model::clip::floor_char_boundary(s, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(q: &str) -> String {
        match check(q) {
            Err(QueryError::BadData(m)) => m,
            other => panic!("{q:?}: expected bad_data, got {other:?}"),
        }
    }

    #[test]
    fn a_regex_over_the_size_limit_is_refused_naming_its_matcher() {
        let m = refused(r#"sum(rate(x{job="a", path=~".{9999}"}[5m]))"#);
        assert!(m.contains(r#"matcher path=~".{9999}""#), "{m}");
        let m = refused(r#"x{"service.name"!~'.{9999}'}"#);
        assert!(m.contains(r#"matcher service.name!~".{9999}""#), "{m}");
        // Escapes are unquoted as the parser does: `\\d` is the class \d.
        assert!(check(r#"x{a=~"\\d{3}"}"#).is_ok());
        // Strings outside matchers and comments are not regexes.
        assert!(check("label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\") # =~ \".{9999}\"").is_ok());
        // NUL in a matcher value, raw or escaped, is refused: no stored series has one.
        assert!(refused("up{a=\"x\0\"}").contains("NUL byte"));
        assert!(refused(r#"up{a="x\x00"}"#).contains("NUL byte"));
        // Syntax errors are the parser's to report.
        assert!(check(r#"x{a=~"("}"#).is_ok());
    }

    #[test]
    fn matchers_are_counted_per_selector_and_regexes_per_query() {
        let sel = |n: usize, op: &str| {
            let m: Vec<String> = (0..n).map(|i| format!("l{i}{op}\"v\"")).collect();
            format!("x{{{}}}", m.join(","))
        };
        assert!(check(&sel(MAX_MATCHERS_PER_SELECTOR, "!=")).is_ok());
        let m = refused(&sel(MAX_MATCHERS_PER_SELECTOR + 1, "="));
        assert!(
            m.contains("more than 64 label matchers in one selector"),
            "{m}"
        );
        // 64 regexes in two selectors pass, 65 in three do not.
        let q = format!("{} + {}", sel(32, "=~"), sel(32, "!~"));
        assert!(check(&q).is_ok());
        let m = refused(&format!("{q} + y{{a=~\"b\"}}"));
        assert!(m.contains("more than 64 regex matchers"), "{m}");
        // Comparisons outside braces are not matchers.
        assert!(check(&format!("{} != 1", sel(64, "="))).is_ok());
    }
}
