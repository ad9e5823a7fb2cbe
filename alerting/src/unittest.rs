//! Prometheus' rule unit tests (the `promtool test rules` file format), run with promtool
//! 2.42's semantics so a test passes here exactly when it passes there: input series in the
//! expanding notation (`1+2x10`, `_`, `_x3`, `stale`) loaded up to each evaluation time, every
//! group evaluated from 0 to the last `eval_time` every `evaluation_interval`, alerts compared
//! (firing only, labels and annotations) at the evaluation at or before each `eval_time`, and
//! PromQL expressions compared exactly after the last evaluation.
//!
//! Pure like the rest of the crate: the caller reads the test file and the rule files it
//! names (see [`TestFile::rule_files`]) and passes their text.

use crate::duration;
use crate::eval::{AlertState, EvalOptions, GroupEvaluator};
use crate::rulefile::{self, RuleGroup};
use crate::yaml::{self, err, Fields, Node, YamlError};
use query::value::{Labels, STALE_NAN_BITS};
use query::{MemoryStorage, Value};
use std::collections::BTreeMap;

/// A parsed test file.
#[derive(Clone, Debug, Default)]
pub struct TestFile {
    /// Rule files (paths or globs relative to the test file), in order.
    pub rule_files: Vec<String>,
    pub evaluation_interval_ms: i64,
    pub group_eval_order: Vec<String>,
    pub tests: Vec<TestGroup>,
}

/// One entry of `tests:`: input series and the expectations on them.
#[derive(Clone, Debug, Default)]
pub struct TestGroup {
    pub name: String,
    pub interval_ms: i64,
    pub input_series: Vec<(String, String)>,
    pub alert_rule_tests: Vec<AlertTest>,
    pub promql_expr_tests: Vec<PromqlTest>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

/// The alerts expected firing for one alert name at one time.
#[derive(Clone, Debug, Default)]
pub struct AlertTest {
    pub eval_time_ms: i64,
    pub alertname: String,
    pub exp_alerts: Vec<ExpectedAlert>,
}

/// One alert expected firing.
#[derive(Clone, Debug, Default)]
pub struct ExpectedAlert {
    /// Labels without `alertname` (added from the test); an empty value is kept, so it
    /// matches no alert (an alert has no empty labels), as in promtool.
    pub labels: Vec<(String, String)>,
    pub annotations: BTreeMap<String, String>,
}

/// An expression and the samples it must give at one time.
#[derive(Clone, Debug, Default)]
pub struct PromqlTest {
    pub expr: String,
    pub eval_time_ms: i64,
    pub exp_samples: Vec<(String, f64)>,
}

/// A rule file's name (for messages) and text.
#[derive(Clone, Debug)]
pub struct RuleSource {
    pub name: String,
    pub text: String,
}

/// The verdict of one test group: passed when `errors` is empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupOutcome {
    pub name: String,
    pub errors: Vec<String>,
}

/// Reads a test file, refusing unknown keys as promtool's strict YAML decoding does.
pub fn parse_test_file(text: &str) -> Result<TestFile, YamlError> {
    let root = yaml::parse(text)?;
    let f = Fields::new(
        &root,
        "the test file",
        &[
            "rule_files",
            "evaluation_interval",
            "group_eval_order",
            "tests",
        ],
    )?;
    let strings = |key: &str| -> Result<Vec<String>, YamlError> {
        match f.value(key) {
            Some(n) => n.as_seq(key)?.iter().map(|x| x.as_str(key)).collect(),
            None => Ok(Vec::new()),
        }
    };
    let mut out = TestFile {
        rule_files: strings("rule_files")?,
        evaluation_interval_ms: match f.value("evaluation_interval") {
            Some(n) if !n.is_null() => dur(n, "evaluation_interval")?,
            _ => 0,
        },
        group_eval_order: strings("group_eval_order")?,
        tests: Vec::new(),
    };
    if out.evaluation_interval_ms == 0 {
        out.evaluation_interval_ms = 60_000;
    }
    if let Some(ts) = f.value("tests") {
        for t in ts.as_seq("tests")? {
            out.tests.push(read_group(t)?);
        }
    }
    Ok(out)
}

fn dur(n: &Node, what: &str) -> Result<i64, YamlError> {
    let s = n.as_str(what)?;
    duration::parse(&s).map_err(|e| err(n.pos, format!("{what}: {e}")))
}

fn read_group(t: &Node) -> Result<TestGroup, YamlError> {
    let f = Fields::new(
        t,
        "a test group",
        &[
            "interval",
            "input_series",
            "alert_rule_test",
            "promql_expr_test",
            "external_labels",
            "external_url",
            "name",
        ],
    )?;
    let mut g = TestGroup::default();
    if let Some(n) = f.value("name") {
        g.name = n.as_str("name")?;
    }
    if let Some(n) = f.value("interval").filter(|n| !n.is_null()) {
        g.interval_ms = dur(n, "interval")?;
    }
    if let Some(n) = f.value("external_url") {
        g.external_url = n.as_str("external_url")?;
    }
    if let Some(n) = f.value("external_labels") {
        for (k, v) in n.as_string_map("external_labels")? {
            g.external_labels.insert(k.as_str("a label name")?, v);
        }
    }
    if let Some(n) = f.value("input_series") {
        for s in n.as_seq("input_series")? {
            let sf = Fields::new(s, "an input series", &["series", "values"])?;
            let get = |k: &str| sf.value(k).map_or(Ok(String::new()), |v| v.as_str(k));
            g.input_series.push((get("series")?, get("values")?));
        }
    }
    if let Some(n) = f.value("alert_rule_test") {
        for a in n.as_seq("alert_rule_test")? {
            let af = Fields::new(
                a,
                "an alert rule test",
                &["eval_time", "alertname", "exp_alerts"],
            )?;
            let mut at = AlertTest::default();
            if let Some(v) = af.value("eval_time").filter(|v| !v.is_null()) {
                at.eval_time_ms = dur(v, "eval_time")?;
            }
            if let Some(v) = af.value("alertname") {
                at.alertname = v.as_str("alertname")?;
            }
            if let Some(v) = af.value("exp_alerts") {
                for e in v.as_seq("exp_alerts")? {
                    let ef =
                        Fields::new(e, "an expected alert", &["exp_labels", "exp_annotations"])?;
                    let mut labels = Vec::new();
                    if let Some(l) = ef.value("exp_labels") {
                        for (k, v) in l.as_string_map("exp_labels")? {
                            labels.push((k.as_str("a label name")?, v));
                        }
                    }
                    let mut annotations = BTreeMap::new();
                    if let Some(l) = ef.value("exp_annotations") {
                        for (k, v) in l.as_string_map("exp_annotations")? {
                            annotations.insert(k.as_str("an annotation name")?, v);
                        }
                    }
                    at.exp_alerts.push(ExpectedAlert {
                        labels,
                        annotations,
                    });
                }
            }
            g.alert_rule_tests.push(at);
        }
    }
    if let Some(n) = f.value("promql_expr_test") {
        for p in n.as_seq("promql_expr_test")? {
            let pf = Fields::new(
                p,
                "a promql expression test",
                &["expr", "eval_time", "exp_samples"],
            )?;
            let mut pt = PromqlTest::default();
            if let Some(v) = pf.value("expr") {
                pt.expr = v.as_str("expr")?;
            }
            if let Some(v) = pf.value("eval_time").filter(|v| !v.is_null()) {
                pt.eval_time_ms = dur(v, "eval_time")?;
            }
            if let Some(v) = pf.value("exp_samples") {
                for s in v.as_seq("exp_samples")? {
                    let sf = Fields::new(s, "an expected sample", &["labels", "value"])?;
                    let labels = sf
                        .value("labels")
                        .map_or(Ok(String::new()), |v| v.as_str("labels"))?;
                    let value = match sf.value("value").filter(|v| !v.is_null()) {
                        Some(v) => {
                            let text = v.as_str("value")?;
                            yaml_float(&text).ok_or_else(|| {
                                err(v.pos, format!("value: {text:?} is not a number"))
                            })?
                        }
                        None => 0.0,
                    };
                    pt.exp_samples.push((labels, value));
                }
            }
            g.promql_expr_tests.push(pt);
        }
    }
    Ok(g)
}

/// A float as YAML writes it (`1e3`, `.inf`, `-.Inf`, `.nan`).
fn yaml_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => s.parse::<f64>().ok().filter(|_| {
            !s.eq_ignore_ascii_case("inf")
                && !s.eq_ignore_ascii_case("nan")
                && !s.to_ascii_lowercase().contains("inf")
        }),
    }
}

/// A number of PromQL's series notation (also `Inf`, `NaN`, hex).
fn series_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        b if b.starts_with("0x") => i64::from_str_radix(&b[2..], 16).ok()? as f64,
        _ => body.parse::<f64>().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// Expands series notation into one optional value per interval (`None` is a gap).
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    let bad = |item: &str| format!("invalid value {item:?} in series values {text:?}");
    for item in text.split_whitespace() {
        if item == "_" {
            out.push(None);
            continue;
        }
        if item == "stale" {
            out.push(Some(f64::from_bits(STALE_NAN_BITS)));
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| bad(item))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        // In series notation `x` always starts the repeat count: "0x10" is 0 repeated.
        let xi = item.rfind('x');
        let Some(xi) = xi else {
            out.push(Some(series_number(item).ok_or_else(|| bad(item))?));
            continue;
        };
        let times: usize = item[xi + 1..].parse().map_err(|_| bad(item))?;
        let head = &item[..xi];
        // head is `a`, `a+b` or `a-b` (a may be signed, and may have an exponent).
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| (c == '+' || c == '-') && !head[..i].ends_with(['e', 'E']))
            .map(|(i, _)| i);
        let (start, inc) = match split {
            Some(i) => (
                series_number(&head[..i]).ok_or_else(|| bad(item))?,
                series_number(&head[i..]).ok_or_else(|| bad(item))?,
            ),
            None => (series_number(head).ok_or_else(|| bad(item))?, 0.0),
        };
        let mut v = start;
        for _ in 0..=times {
            out.push(Some(v));
            v += inc;
        }
    }
    Ok(out)
}

/// Parses a metric as promtool's `parser.ParseMetric`: `name{a="b", c='d'}`, `{__name__="x"}`
/// or empty; empty label values are dropped.
pub fn parse_metric(s: &str) -> Result<Labels, String> {
    let s = s.trim();
    let bad = |why: &str| format!("could not parse metric {s:?}: {why}");
    let name_end = s
        .char_indices()
        .find(|&(_, c)| !(c == '_' || c == ':' || c.is_ascii_alphanumeric()))
        .map_or(s.len(), |(i, _)| i);
    let name = &s[..name_end];
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad("a metric name cannot start with a digit"));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    let rest = s[name_end..].trim();
    if rest.is_empty() {
        return Ok(Labels::new(pairs));
    }
    let inner = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| bad("expected {labels}"))?;
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut lname = String::new();
        while let Some(&c) = chars.peek() {
            if c == '_' || c.is_ascii_alphanumeric() {
                lname.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if !rulefile::is_label_name(&lname) {
            return Err(bad("expected a label name"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad("expected = after a label name"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let quote = chars.next().filter(|q| matches!(q, '"' | '\'' | '`'));
        let Some(quote) = quote else {
            return Err(bad("expected a quoted label value"));
        };
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(bad("unterminated label value")),
                Some(c) if c == quote => break,
                Some('\\') if quote != '`' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('\\') => value.push('\\'),
                    Some(c) if c == '"' || c == '\'' => value.push(c),
                    _ => return Err(bad("bad escape in label value")),
                },
                Some(c) => value.push(c),
            }
        }
        pairs.push((lname, value));
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            Some(',') | None => {}
            Some(_) => return Err(bad("expected , between labels")),
        }
    }
    Ok(Labels::new(pairs))
}

/// Runs every test group of `file` with the rule files' texts (already read and globbed, in
/// the order the file lists them). One outcome per test group.
pub fn run(file: &TestFile, rules: &[RuleSource]) -> Vec<GroupOutcome> {
    let mut order: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.as_str(), i).is_some() {
            return vec![GroupOutcome {
                name: String::new(),
                errors: vec![format!("group name repeated in evaluation order: {g}")],
            }];
        }
    }
    // Rule files are checked once; promtool checks them again for every test group, with the
    // same result.
    let mut groups: Vec<RuleGroup> = Vec::new();
    let mut load_errors = Vec::new();
    for src in rules {
        let parsed = rulefile::parse(&src.text);
        if !parsed.is_valid() {
            load_errors.extend(parsed.errors().map(|d| format!("{}: {d}", src.name)));
            break;
        }
        if let Some(f) = parsed.file {
            groups.extend(f.groups);
        }
    }
    // promtool orders groups by `group_eval_order` (unlisted groups first) and otherwise in
    // no fixed order; file order is the stable choice.
    groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(0));
    file.tests
        .iter()
        .map(|tg| GroupOutcome {
            name: tg.name.clone(),
            errors: if load_errors.is_empty() {
                run_group(tg, file.evaluation_interval_ms, &groups)
            } else {
                load_errors.clone()
            },
        })
        .collect()
}

/// Input series with their samples, in time order.
type InputSeries = Vec<(Labels, Vec<(i64, f64)>)>;

fn load_series(tg: &TestGroup) -> Result<InputSeries, String> {
    let mut out: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
    for (series, values) in &tg.input_series {
        let labels = parse_metric(series)?;
        let vals = expand_values(values)?;
        let mut points: Vec<(i64, f64)> = Vec::new();
        for (i, v) in vals.into_iter().enumerate() {
            let Some(v) = v else { continue };
            let t = i as i64 * tg.interval_ms;
            // With no interval every value lands at 0 and the first one stays (the later ones
            // are refused as duplicates), as in promtool.
            if points.last().is_some_and(|p| p.0 == t) {
                continue;
            }
            points.push((t, v));
        }
        match out.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, p)) => {
                for x in points {
                    if !p.iter().any(|q| q.0 == x.0) {
                        p.push(x);
                    }
                }
                p.sort_by_key(|x| x.0);
            }
            None => out.push((labels, points)),
        }
    }
    Ok(out)
}

fn labels_vec(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fmt_labels(l: &[(String, String)]) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

type LabelsAndAnnotations = (Vec<(String, String)>, Vec<(String, String)>);

fn fmt_alerts(list: &[LabelsAndAnnotations]) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let items: Vec<String> = list
        .iter()
        .enumerate()
        .map(|(i, (l, a))| {
            format!(
                "{i}:\n              Labels:{}\n              Annotations:{}",
                fmt_labels(l),
                fmt_labels(a)
            )
        })
        .collect();
    format!(
        "[\n            {}\n            ]",
        items.join(",\n            ")
    )
}

fn run_group(tg: &TestGroup, eval_interval: i64, groups: &[RuleGroup]) -> Vec<String> {
    let series = match load_series(tg) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let opts = EvalOptions {
        external_labels: tg.external_labels.clone(),
        external_url: tg.external_url.clone(),
        engine: query::EngineOptions {
            default_subquery_step_ms: eval_interval,
            ..Default::default()
        },
    };
    let mut evaluators: Vec<GroupEvaluator> = groups
        .iter()
        .map(|g| GroupEvaluator::new(g.clone(), opts.clone()))
        .collect();
    let mut errs = Vec::new();
    for a in &tg.alert_rule_tests {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                duration::format(a.eval_time_ms)
            )];
        }
    }
    let mut alert_times: Vec<i64> = tg.alert_rule_tests.iter().map(|a| a.eval_time_ms).collect();
    alert_times.sort();
    alert_times.dedup();
    let maxt = tg
        .alert_rule_tests
        .iter()
        .map(|a| a.eval_time_ms)
        .chain(tg.promql_expr_tests.iter().map(|p| p.eval_time_ms))
        .max()
        .unwrap_or(0)
        .max(0);
    let mut storage = MemoryStorage::new();
    let mut cursors = vec![0usize; series.len()];
    let mut curr = 0;
    let mut ts = 0i64;
    while ts <= maxt {
        // Input samples up to this instant, as promtool's lazy loader appends them.
        for (i, (labels, points)) in series.iter().enumerate() {
            let start = cursors[i];
            let end = start + points[start..].partition_point(|p| p.0 <= ts);
            if end > start {
                storage.add(labels.clone(), points[start..end].iter().copied());
                cursors[i] = end;
            }
        }
        let mut eval_errs = Vec::new();
        for ev in &mut evaluators {
            let out = ev.eval(&storage, ts);
            for (l, v) in out.samples {
                storage.add(l, [(ts, v)]);
            }
            for e in out.errors {
                eval_errs.push(format!(
                    "    rule: {}, time: {}, err: {}",
                    e.rule,
                    duration::format(ts),
                    e.message
                ));
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while curr < alert_times.len()
            && ts <= alert_times[curr]
            && alert_times[curr] < ts + eval_interval
        {
            let t = alert_times[curr];
            for test in tg.alert_rule_tests.iter().filter(|a| a.eval_time_ms == t) {
                let mut got: Vec<LabelsAndAnnotations> = Vec::new();
                for ev in &evaluators {
                    for (ri, rule) in ev.group().rules.iter().enumerate() {
                        if rule.rule_type != crate::RuleType::Alerting
                            || rule.name != test.alertname
                        {
                            continue;
                        }
                        for a in ev.active_alerts(ri) {
                            if a.state == AlertState::Firing {
                                got.push((
                                    labels_vec(&a.labels),
                                    a.annotations
                                        .iter()
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect(),
                                ));
                            }
                        }
                    }
                }
                let mut exp: Vec<LabelsAndAnnotations> = test
                    .exp_alerts
                    .iter()
                    .map(|e| {
                        let mut l = e.labels.clone();
                        l.retain(|(k, _)| k != "alertname");
                        l.push(("alertname".into(), test.alertname.clone()));
                        l.sort();
                        let a = e.annotations.iter().map(|(k, v)| (k.clone(), v.clone()));
                        (l, a.collect())
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    let name = if tg.name.is_empty() {
                        String::new()
                    } else {
                        format!("    name: {},\n", tg.name)
                    };
                    errs.push(format!(
                        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        test.alertname,
                        duration::format(t),
                        fmt_alerts(&exp),
                        fmt_alerts(&got)
                    ));
                }
            }
            curr += 1;
        }
        ts += eval_interval;
    }
    'tests: for pt in &tg.promql_expr_tests {
        let fail = |e: String| {
            format!(
                "    expr: {:?}, time: {}, err: {e}",
                pt.expr,
                duration::format(pt.eval_time_ms)
            )
        };
        let got = match query::instant_query(&storage, &pt.expr, pt.eval_time_ms, &opts.engine) {
            Ok(Value::Vector(v)) => v
                .into_iter()
                .map(|s| (labels_vec(&s.labels), s.v))
                .collect::<Vec<_>>(),
            Ok(Value::Scalar(v)) => vec![(Vec::new(), v)],
            Ok(_) => {
                errs.push(fail("rule result is not a vector or scalar".into()));
                continue;
            }
            Err(e) => {
                errs.push(fail(e.to_string()));
                continue;
            }
        };
        let mut exp = Vec::new();
        for (l, v) in &pt.exp_samples {
            match parse_metric(l) {
                Ok(l) => exp.push((labels_vec(&l), *v)),
                Err(e) => {
                    errs.push(fail(format!("labels {l:?}: {e}")));
                    continue 'tests;
                }
            }
        }
        let mut got = got;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        // Exact equality, as reflect.DeepEqual: NaN never equals NaN.
        let same =
            got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && g.1 == e.1);
        if !same {
            let show = |v: &[(Vec<(String, String)>, f64)]| {
                if v.is_empty() {
                    return "nil".to_string();
                }
                v.iter()
                    .map(|(l, x)| {
                        format!("{} {}", fmt_labels(l), crate::gofmt::format_e_shortest(*x))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            errs.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                pt.expr,
                duration::format(pt.eval_time_ms),
                show(&exp),
                show(&got)
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_series_notation() {
        let v = expand_values("1+2x3 _ 5 _x2 stale 0x2 -1-1x1 1e3").unwrap();
        let shown: Vec<String> = v
            .iter()
            .map(|x| match x {
                None => "_".into(),
                Some(f) if query::value::is_stale_nan(*f) => "stale".into(),
                Some(f) => f.to_string(),
            })
            .collect();
        assert_eq!(shown.join(" "), "1 3 5 7 _ 5 _ _ stale 0 0 0 -1 -2 1000");
        assert!(expand_values("1 two").is_err());
    }

    #[test]
    fn parses_metrics_like_promtool() {
        assert_eq!(
            parse_metric(r#"up{job="a", b=''}"#).unwrap(),
            Labels::new([("__name__", "up"), ("job", "a")])
        );
        assert_eq!(parse_metric("").unwrap(), Labels::empty());
        assert_eq!(parse_metric("{}").unwrap(), Labels::empty());
        assert!(parse_metric("up{job=a}").is_err());
    }
}
