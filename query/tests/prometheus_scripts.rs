//! Runs Prometheus 2.42's own PromQL test scripts (`testdata/*.test`) against the engine:
//! `load` blocks fill a [`MemoryStorage`], every `eval instant at` / `eval_ordered` /
//! `eval_fail` is evaluated and compared as Prometheus' test harness compares (same label sets,
//! values equal within 1e-6 relative, order where `eval_ordered`, an error where `eval_fail`).

use query::{instant_query, EngineOptions, Labels, MemoryStorage, Value};
use std::path::PathBuf;

/// Cases pipewatch answers differently from Prometheus, with the reason. A case listed here
/// that starts passing makes the test fail, so the list stays true.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

fn parse_duration_ms(s: &str) -> i64 {
    if s.trim_start_matches('0')
        .chars()
        .all(|c| c.is_ascii_alphabetic())
    {
        return 0; // "0m", "0s": promql-parser refuses zero durations
    }
    let d = promql_parser::util::parse_duration(s).unwrap_or_else(|e| panic!("duration {s}: {e}"));
    d.as_millis() as i64
}

/// Splits `metric{a="b"} rest` into the selector text and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let line = line.trim();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut depth = 0;
    for (i, c) in line.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return (&line[..=i], line[i + 1..].trim());
                }
            }
            c if c.is_whitespace() && depth == 0 => return (&line[..i], line[i..].trim()),
            _ => {}
        }
    }
    (line, "")
}

fn parse_labels(sel: &str) -> Labels {
    let (name, rest) = match sel.find('{') {
        Some(i) => (&sel[..i], &sel[i + 1..sel.len() - 1]),
        None => (sel, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.to_string()));
    }
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == '=') {
            chars.next();
        }
        assert_eq!(chars.next(), Some('"'), "label value of {key} in {sel}");
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some('t') => val.push('\t'),
                    Some(o) => val.push(o),
                    None => {}
                },
                '"' => break,
                o => val.push(o),
            }
        }
        pairs.push((key, val));
    }
    Labels::new(pairs)
}

fn parse_number(s: &str) -> f64 {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        "NaN" | "nan" => f64::NAN,
        "stale" => f64::from_bits(query::value::STALE_NAN_BITS),
        _ => s.parse::<f64>().unwrap_or_else(|_| panic!("number {s:?}")),
    }
}

/// Expands Prometheus' series notation (`1+2x3`, `_x2`, `5x2`, `stale`, `_`) into one
/// optional value per interval.
fn expand_values(text: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        if item == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            out.extend(std::iter::repeat_n(None, n.parse().unwrap()));
            continue;
        }
        // In series notation "0x10" is 0 repeated, not hex.
        let Some(xi) = item.rfind('x') else {
            out.push(Some(parse_number(item)));
            continue;
        };
        let (head, times) = (&item[..xi], item[xi + 1..].parse::<usize>().unwrap());
        // head is "a", "a+b" or "a-b" (a may itself be signed).
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| (c == '+' || c == '-') && !head[..i].ends_with(['e', 'E']))
            .map(|(i, _)| i);
        let (start, inc) = match split {
            Some(i) => (parse_number(&head[..i]), parse_number(&head[i..])),
            None => (parse_number(head), 0.0),
        };
        let mut v = start;
        for _ in 0..=times {
            out.push(Some(v));
            v += inc;
        }
    }
    out
}

struct Case {
    file: String,
    line: usize,
    expr: String,
    at: i64,
    ordered: bool,
    fail: bool,
    expected: Vec<(Option<Labels>, f64)>,
}

fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 0.000001;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < EPS * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < EPS
}

fn check(case: &Case, storage: &MemoryStorage) -> Result<(), String> {
    let got = instant_query(storage, &case.expr, case.at, &EngineOptions::default());
    if case.fail {
        return match got {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("expected an error, got {v:?}")),
        };
    }
    let got = got.map_err(|e| format!("error: {e}"))?;
    match got {
        Value::Scalar(v) => {
            if case.expected.len() != 1 || case.expected[0].0.is_some() {
                return Err(format!("got scalar {v}, expected {:?}", case.expected));
            }
            if !almost_equal(v, case.expected[0].1) {
                return Err(format!("scalar {v} != {}", case.expected[0].1));
            }
            Ok(())
        }
        Value::Vector(vec) => {
            if vec.len() != case.expected.len() {
                return Err(format!(
                    "got {} elements, expected {}: got {:?}",
                    vec.len(),
                    case.expected.len(),
                    vec.iter()
                        .map(|s| (s.labels.to_string(), s.v))
                        .collect::<Vec<_>>()
                ));
            }
            for (i, (labels, want)) in case.expected.iter().enumerate() {
                let labels = labels.clone().unwrap_or_default();
                let pos = vec.iter().position(|s| s.labels == labels);
                let Some(pos) = pos else {
                    return Err(format!(
                        "expected {labels} not in result {:?}",
                        vec.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>()
                    ));
                };
                if case.ordered && pos != i {
                    return Err(format!("{labels} at position {pos}, expected {i}"));
                }
                if !almost_equal(vec[pos].v, *want) {
                    return Err(format!("{labels}: got {} expected {want}", vec[pos].v));
                }
            }
            Ok(())
        }
        other => Err(format!("unexpected result type {}", other.type_name())),
    }
}

fn run_file(path: &PathBuf, failures: &mut Vec<(String, String)>, total: &mut usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut storage = MemoryStorage::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "clear" {
            storage = MemoryStorage::new();
            continue;
        }
        if let Some(gap) = line.strip_prefix("load ") {
            let gap = parse_duration_ms(gap.trim());
            while i < lines.len()
                && !lines[i].trim().is_empty()
                && lines[i].starts_with([' ', '\t'])
            {
                let (sel, vals) = split_series(lines[i]);
                let labels = parse_labels(sel);
                let pts: Vec<(i64, f64)> = expand_values(vals)
                    .into_iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.map(|v| (k as i64 * gap, v)))
                    .collect();
                storage.add(labels, pts);
                i += 1;
            }
            continue;
        }
        let (kind, rest) = line.split_once(' ').unwrap();
        assert!(
            kind.starts_with("eval"),
            "{file}:{i}: unknown command {line}"
        );
        let rest = rest
            .trim()
            .strip_prefix("instant at ")
            .unwrap_or_else(|| panic!("{file}:{i}: {line}"));
        let (at, expr) = rest.split_once(' ').unwrap();
        let mut case = Case {
            file: file.clone(),
            line: i,
            expr: expr.trim().to_string(),
            at: parse_duration_ms(at),
            ordered: kind == "eval_ordered",
            fail: kind == "eval_fail",
            expected: Vec::new(),
        };
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].starts_with([' ', '\t']) {
            let l = lines[i].trim();
            i += 1;
            if l.starts_with('#') {
                continue;
            }
            let first = l.chars().next().unwrap();
            if first == '{'
                || first.is_alphabetic()
                    && !matches!(l, "NaN" | "Inf" | "-Inf")
                    && !l.starts_with("Inf")
            {
                let (sel, val) = split_series(l);
                let v = expand_values(val)[0].unwrap();
                case.expected.push((Some(parse_labels(sel)), v));
            } else {
                case.expected.push((None, expand_values(l)[0].unwrap()));
            }
        }
        *total += 1;
        if let Err(e) = check(&case, &storage) {
            failures.push((format!("{}:{} {}", case.file, case.line, case.expr), e));
        }
    }
}

#[test]
fn prometheus_promql_test_scripts_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "test scripts missing from {}",
        dir.display()
    );
    let mut failures = Vec::new();
    let mut total = 0;
    for f in &files {
        run_file(f, &mut failures, &mut total);
    }
    let unexpected: Vec<_> = failures
        .iter()
        .filter(|(name, _)| !KNOWN_DIFFERENCES.iter().any(|(k, _)| name.contains(k)))
        .collect();
    for (name, err) in &unexpected {
        eprintln!("FAIL {name}\n     {err}");
    }
    let stale: Vec<_> = KNOWN_DIFFERENCES
        .iter()
        .filter(|(k, _)| !failures.iter().any(|(n, _)| n.contains(k)))
        .collect();
    eprintln!(
        "{} of {total} Prometheus test cases pass; {} known differences",
        total - failures.len(),
        failures.len() - unexpected.len()
    );
    assert!(total > 500, "only {total} cases found");
    assert!(
        unexpected.is_empty(),
        "{} cases differ from Prometheus",
        unexpected.len()
    );
    assert!(
        stale.is_empty(),
        "listed differences that now pass: {stale:?}"
    );
}
