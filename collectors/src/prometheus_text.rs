//! Parser for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text: turns a
//! scraped `/metrics` body into a [`model::Batch`].
//!
//! # Why a hand-written parser
//!
//! Both candidate crates were run against the captured exporter bodies in
//! `tests/fixtures/prometheus/` before writing this:
//!
//! - `prometheus-parse` 0.2.5 never reports bad input: a line its regex does not match is
//!   ignored and an unparsable value is skipped, so an HTML error page parses as an empty
//!   scrape and a broken target looks healthy. It does not understand OpenMetrics: the counter
//!   family `etl_rows_written` comes out untyped (its `_total`/`_created` samples are not
//!   matched to the family), `info` and `stateset` families are untyped, `# EOF` is not
//!   required (a truncated body is accepted), `# UNIT` is dropped, and exemplars are not
//!   validated. It folds histogram buckets and summary quantiles into one aggregate value per
//!   series, so the per-series samples Prometheus stores are lost (503 instead of 507 samples
//!   for node_exporter), and it keeps empty label values.
//! - `openmetrics-parser` 0.5.1 rejects three of the six real bodies: postgres_exporter
//!   ("Counter totals must be non negative (got: NaN)"), pushgateway ("Labels in metrics have
//!   different label sets") and the Python client's OpenMetrics output ("Missing mandatory
//!   label for metric: quantile", for a summary without quantiles). It is also LGPL-3.0, which
//!   does not fit this Apache-2.0 workspace as a static dependency.
//!
//! The rules below follow what Prometheus 2.42 itself stores for the same bodies (checked in
//! `tests/prometheus_fixtures.rs` against its remote_write output):
//!
//! - label values are unescaped (`\\`, `\"`, `\n`; any other escape is kept verbatim, as
//!   Prometheus does), and an empty label value means the label is absent;
//! - every series carries the type of its family: `foo_bucket`, `foo_sum`, `foo_count` of a
//!   histogram are typed histogram; OpenMetrics `foo_total`/`foo_created` belong to counter
//!   family `foo`, `foo_info` to info family `foo`;
//! - `le` and `quantile` values are kept as written (`1` from Go, `1.0` from Python), because
//!   Prometheus 2.42 stores them that way; they are validated as numbers;
//! - 0.0.4 timestamps are integer milliseconds, OpenMetrics timestamps float seconds; samples
//!   without one get the scrape's timestamp;
//! - a second sample for the same series and timestamp in one body is dropped and the first
//!   one kept (Prometheus counts it as a duplicate and keeps the first);
//! - exemplars (OpenMetrics only, on counter `_total` and histogram `_bucket` samples) are
//!   parsed and validated, then dropped: the model has no place for them yet.

use model::{
    Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries, TimestampMs,
};
use std::collections::{HashMap, HashSet};
use thiserror::Error;

/// Which text format a body is in; decides timestamps units, `# EOF` and suffix rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4`, also the fallback for anything unrecognised.
    Text004,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text004 => "text/plain; version=0.0.4",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0",
        }
    }
}

/// Picks the format from a response's `Content-Type`. Like Prometheus, anything that is not
/// OpenMetrics (including a missing header or `text/html` from a misconfigured target) is
/// read as text 0.0.4, so the parse error then points at the offending line.
pub fn format_from_content_type(ct: Option<&str>) -> Format {
    let media = ct
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if media.eq_ignore_ascii_case("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Text004
    }
}

/// Why a body could not be parsed. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole exposition body. Samples without a timestamp get `default_ts`.
///
/// Series come out in body order with the type of their family; `metadata` has one entry per
/// family that has a `# TYPE`, `# HELP` or `# UNIT` line, in order of first mention.
pub fn parse(body: &str, format: Format, default_ts: TimestampMs) -> Result<Batch, ParseError> {
    let mut p = BodyParser::new(format, default_ts);
    let mut saw_eof = false;
    let mut line_no = 0;
    // `split('\n')` yields a last empty piece for a body that ends in a newline; it is not a line.
    let mut lines = body.split('\n').peekable();
    while let Some(raw) = lines.next() {
        if raw.is_empty() && lines.peek().is_none() {
            break;
        }
        line_no += 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if saw_eof {
            return Err(ParseError {
                line: line_no,
                message: format!("unexpected content after \"# EOF\": {}", preview(line)),
            });
        }
        let result = if line.starts_with('#') {
            p.comment(line).map(|eof| saw_eof = eof)
        } else if line.trim().is_empty() {
            match format {
                Format::Text004 => Ok(()),
                Format::OpenMetrics => {
                    Err("empty line; OpenMetrics does not allow blank lines".to_string())
                }
            }
        } else {
            p.sample_line(line)
        };
        result.map_err(|message| ParseError {
            line: line_no,
            message,
        })?;
    }
    if format == Format::OpenMetrics && !saw_eof {
        return Err(ParseError {
            line: line_no + 1,
            message: "missing \"# EOF\" at the end of the OpenMetrics body; the body is probably truncated"
                .to_string(),
        });
    }
    Ok(p.finish())
}

struct Family {
    name: String,
    metric_type: MetricType,
    has_type: bool,
    help: Option<String>,
    unit: Option<String>,
}

struct BodyParser {
    format: Format,
    default_ts: TimestampMs,
    families: Vec<Family>,
    family_index: HashMap<String, usize>,
    series: Vec<TimeSeries>,
    series_index: HashMap<SeriesKey, usize>,
    /// Sample names that matched no declared family; a later `# TYPE` for them is an error
    /// because their earlier samples would have the wrong type.
    orphan_names: HashSet<String>,
    /// OpenMetrics: the family of the previous sample, and families already left behind.
    current_family: Option<usize>,
    finished_families: HashSet<usize>,
}

impl BodyParser {
    fn new(format: Format, default_ts: TimestampMs) -> Self {
        Self {
            format,
            default_ts,
            families: Vec::new(),
            family_index: HashMap::new(),
            series: Vec::new(),
            series_index: HashMap::new(),
            orphan_names: HashSet::new(),
            current_family: None,
            finished_families: HashSet::new(),
        }
    }

    fn finish(self) -> Batch {
        let metadata = self
            .families
            .into_iter()
            .map(|f| MetricMetadata {
                family: f.name,
                metric_type: f.metric_type,
                unit: f.unit.unwrap_or_default(),
                help: f.help.unwrap_or_default(),
            })
            .collect();
        Batch {
            series: self.series,
            metadata,
        }
    }

    /// Handles a line starting with `#`; returns whether it was `# EOF`.
    fn comment(&mut self, line: &str) -> Result<bool, String> {
        let rest = &line[1..];
        if self.format == Format::OpenMetrics && rest == " EOF" {
            return Ok(true);
        }
        let mut parts = rest.trim_start_matches([' ', '\t']).splitn(2, [' ', '\t']);
        let keyword = parts.next().unwrap_or("");
        let after = parts.next().unwrap_or("");
        match keyword {
            "HELP" | "TYPE" => {}
            "UNIT" if self.format == Format::OpenMetrics => {}
            _ if self.format == Format::Text004 => return Ok(false), // plain comment
            _ => {
                return Err(format!(
                    "unexpected comment {}; OpenMetrics only allows \"# HELP\", \"# TYPE\", \"# UNIT\" and \"# EOF\"",
                    preview(line)
                ))
            }
        }
        let after = after.trim_start_matches([' ', '\t']);
        let (name, text) = match after.find([' ', '\t']) {
            Some(i) => (&after[..i], &after[i + 1..]),
            None => (after, ""),
        };
        if !is_metric_name(name) {
            return Err(format!(
                "expected a metric family name after \"# {keyword}\", found {}; names match [a-zA-Z_:][a-zA-Z0-9_:]*",
                preview(name)
            ));
        }
        match keyword {
            "HELP" => {
                if text.contains('\0') {
                    return Err(format!(
                        "the \"# HELP\" text of {name:?} holds a NUL byte (0x00), which PostgreSQL cannot store; fix the exporter's help text"
                    ));
                }
                let help = unescape_help(text, self.format);
                let fam = self.family_mut(name);
                if fam.help.is_some() {
                    return Err(format!("second \"# HELP\" line for metric family {name:?}"));
                }
                fam.help = Some(help);
            }
            "TYPE" => {
                let metric_type = self.parse_type(text.trim())?;
                if self.orphan_names.contains(name)
                    || suffixes(metric_type, self.format)
                        .iter()
                        .any(|s| self.orphan_names.contains(&format!("{name}{s}")))
                {
                    return Err(format!(
                        "\"# TYPE\" for {name:?} comes after samples of that family; put \"# HELP\" and \"# TYPE\" before the samples"
                    ));
                }
                let fam = self.family_mut(name);
                if fam.has_type {
                    return Err(format!("second \"# TYPE\" line for metric family {name:?}"));
                }
                fam.has_type = true;
                fam.metric_type = metric_type;
            }
            _ => {
                let unit = text.trim().to_string();
                if !unit.is_empty() && !name.ends_with(&format!("_{unit}")) {
                    return Err(format!(
                        "unit {unit:?} is not a suffix of metric family {name:?}; OpenMetrics requires the name to end in _{unit}"
                    ));
                }
                let fam = self.family_mut(name);
                if fam.unit.is_some() {
                    return Err(format!("second \"# UNIT\" line for metric family {name:?}"));
                }
                fam.unit = Some(unit);
            }
        }
        Ok(false)
    }

    fn parse_type(&self, t: &str) -> Result<MetricType, String> {
        let known: &[(&str, MetricType)] = match self.format {
            Format::Text004 => &[
                ("counter", MetricType::Counter),
                ("gauge", MetricType::Gauge),
                ("histogram", MetricType::Histogram),
                ("summary", MetricType::Summary),
                ("untyped", MetricType::Untyped),
            ],
            Format::OpenMetrics => &[
                ("counter", MetricType::Counter),
                ("gauge", MetricType::Gauge),
                ("histogram", MetricType::Histogram),
                ("gaugehistogram", MetricType::GaugeHistogram),
                ("summary", MetricType::Summary),
                ("info", MetricType::Info),
                ("stateset", MetricType::StateSet),
                ("unknown", MetricType::Untyped),
            ],
        };
        known
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, ty)| *ty)
            .ok_or_else(|| {
                let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown metric type {}; use one of {}",
                    preview(t),
                    names.join(", ")
                )
            })
    }

    fn family_mut(&mut self, name: &str) -> &mut Family {
        let idx = match self.family_index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    metric_type: MetricType::Untyped,
                    has_type: false,
                    help: None,
                    unit: None,
                });
                self.family_index
                    .insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        &mut self.families[idx]
    }

    /// The declared family a sample name belongs to, with the suffix it used ("" = exact).
    fn family_of<'n>(&self, name: &'n str) -> Option<(usize, &'n str)> {
        if let Some(&i) = self.family_index.get(name) {
            if allows_exact_name(self.families[i].metric_type, self.format) {
                return Some((i, ""));
            }
        }
        for suffix in ALL_SUFFIXES {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some(&i) = self.family_index.get(base) {
                    if suffixes(self.families[i].metric_type, self.format).contains(&suffix) {
                        return Some((i, &name[base.len()..]));
                    }
                }
            }
        }
        None
    }

    fn sample_line(&mut self, line: &str) -> Result<(), String> {
        let mut c = Cursor::new(line);
        if self.format == Format::Text004 {
            c.skip_ws();
        }
        let name = c.metric_name()?;
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if c.peek() == Some(b'{') {
            c.label_set(&mut pairs)?;
        }
        if !c.skip_ws() {
            return Err(if c.at_end() {
                format!(
                    "expected a value after {}, found the end of the line",
                    preview(&line[..c.pos])
                )
            } else {
                format!(
                    "expected a space and then a value after {}, found {}",
                    preview(&line[..c.pos]),
                    preview(c.rest())
                )
            });
        }
        let value_tok = c.token();
        if value_tok.is_empty() {
            return Err(
                "expected a float value after the labels, found the end of the line".to_string(),
            );
        }
        let value = parse_float(value_tok).ok_or_else(|| {
            format!(
                "expected a float value after the labels, found {}",
                preview(value_tok)
            )
        })?;
        c.skip_ws();
        let mut ts = self.default_ts;
        let mut has_ts = false;
        if !c.at_end() && c.peek() != Some(b'#') {
            let tok = c.token();
            ts = self.parse_timestamp(tok)?;
            has_ts = true;
            c.skip_ws();
        }
        let (family, suffix) = match self.family_of(name) {
            Some((i, s)) => (Some(i), s),
            None => {
                if let Some(&i) = self.family_index.get(name) {
                    let f = &self.families[i];
                    let names: Vec<String> = suffixes(f.metric_type, self.format)
                        .iter()
                        .map(|s| format!("{name}{s}"))
                        .collect();
                    return Err(format!(
                        "sample {name:?} of {} family {name:?} must be named {}",
                        f.metric_type,
                        names.join(" or ")
                    ));
                }
                (None, "")
            }
        };
        if !c.at_end() {
            if self.format == Format::Text004 {
                return Err(format!(
                    "unexpected text after the value{}: {}; text format 0.0.4 has no exemplars or comments after a sample",
                    if has_ts { " and timestamp" } else { "" },
                    preview(c.rest())
                ));
            }
            let exemplar_ok = match family.map(|i| self.families[i].metric_type) {
                Some(MetricType::Counter) => suffix == "_total",
                Some(MetricType::Histogram | MetricType::GaugeHistogram) => suffix == "_bucket",
                _ => false,
            };
            if !exemplar_ok {
                return Err(format!(
                    "exemplar on {name:?}; OpenMetrics allows exemplars only on counter _total and histogram _bucket samples"
                ));
            }
            c.exemplar()?;
        }
        let metric_type = match family {
            Some(i) => {
                self.check_family_rules(i, name, suffix, &pairs)?;
                self.families[i].metric_type
            }
            None => {
                if !self.orphan_names.contains(name) {
                    self.orphan_names.insert(name.to_string());
                }
                MetricType::Untyped
            }
        };
        if self.format == Format::OpenMetrics {
            self.check_grouping(family, name)?;
        }
        let mut seen = HashSet::with_capacity(pairs.len());
        for (k, _) in &pairs {
            if !seen.insert(*k) {
                return Err(format!(
                    "label {k:?} appears twice in the sample for {name:?}"
                ));
            }
        }
        let key = SeriesKey::new(name, Labels::from_pairs(pairs));
        self.push(key, metric_type, Sample { ts, value });
        Ok(())
    }

    fn parse_timestamp(&self, tok: &str) -> Result<TimestampMs, String> {
        match self.format {
            Format::Text004 => tok.parse::<i64>().map_err(|_| {
                format!(
                    "expected an integer timestamp in milliseconds after the value, found {}",
                    preview(tok)
                )
            }),
            Format::OpenMetrics => {
                let secs = parse_float(tok).filter(|s| s.is_finite()).ok_or_else(|| {
                    format!(
                        "expected a timestamp in seconds after the value, found {}",
                        preview(tok)
                    )
                })?;
                let ms = (secs * 1000.0).round();
                if ms.abs() >= i64::MAX as f64 {
                    return Err(format!("timestamp {tok} seconds is out of range"));
                }
                Ok(ms as i64)
            }
        }
    }

    /// Label rules that make a sample meaningful within its family.
    fn check_family_rules(
        &self,
        fam: usize,
        name: &str,
        suffix: &str,
        pairs: &[(&str, String)],
    ) -> Result<(), String> {
        let f = &self.families[fam];
        let label = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let numeric = |n: &str| -> Result<(), String> {
            match label(n).filter(|v| !v.is_empty()) {
                None => Err(format!(
                    "sample {name:?} of {} family {:?} needs a {n:?} label",
                    f.metric_type, f.name
                )),
                Some(v) if parse_float(v).is_none() => Err(format!(
                    "label {n}={v:?} of {name:?} is not a number; use a float such as \"0.5\" or \"+Inf\""
                )),
                Some(_) => Ok(()),
            }
        };
        match (f.metric_type, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => numeric("le"),
            (MetricType::Summary, "") => numeric("quantile"),
            (MetricType::StateSet, "") if label(&f.name).is_none() => Err(format!(
                "stateset sample {name:?} needs a label named {:?} that names the state",
                f.name
            )),
            _ => Ok(()),
        }
    }

    /// OpenMetrics forbids interleaving families: a family's samples form one block.
    fn check_grouping(&mut self, family: Option<usize>, name: &str) -> Result<(), String> {
        if family == self.current_family {
            return Ok(());
        }
        if let Some(prev) = self.current_family {
            self.finished_families.insert(prev);
        }
        if let Some(f) = family {
            if self.finished_families.contains(&f) {
                return Err(format!(
                    "sample {name:?} of family {:?} comes after other families; OpenMetrics requires each family's samples to be in one block",
                    self.families[f].name
                ));
            }
        }
        self.current_family = family;
        Ok(())
    }

    fn push(&mut self, key: SeriesKey, metric_type: MetricType, sample: Sample) {
        match self.series_index.get(&key) {
            Some(&i) => {
                let s = &mut self.series[i];
                if !s.samples.iter().any(|x| x.ts == sample.ts) {
                    s.samples.push(sample);
                }
            }
            None => {
                self.series_index.insert(key.clone(), self.series.len());
                self.series.push(TimeSeries {
                    key,
                    metric_type,
                    samples: vec![sample],
                });
            }
        }
    }
}

const ALL_SUFFIXES: [&str; 8] = [
    "_bucket", "_sum", "_count", "_total", "_created", "_gsum", "_gcount", "_info",
];

/// Sample-name suffixes a family of this type owns, besides (where allowed) its own name.
fn suffixes(t: MetricType, format: Format) -> &'static [&'static str] {
    match (format, t) {
        (Format::Text004, MetricType::Histogram) => &["_bucket", "_sum", "_count"],
        (Format::Text004, MetricType::Summary) => &["_sum", "_count"],
        (Format::Text004, _) => &[],
        (Format::OpenMetrics, MetricType::Counter) => &["_total", "_created"],
        (Format::OpenMetrics, MetricType::Histogram) => &["_bucket", "_sum", "_count", "_created"],
        (Format::OpenMetrics, MetricType::GaugeHistogram) => &["_bucket", "_gsum", "_gcount"],
        (Format::OpenMetrics, MetricType::Summary) => &["_sum", "_count", "_created"],
        (Format::OpenMetrics, MetricType::Info) => &["_info"],
        (Format::OpenMetrics, _) => &[],
    }
}

fn allows_exact_name(t: MetricType, format: Format) -> bool {
    match t {
        MetricType::Histogram | MetricType::GaugeHistogram | MetricType::Info => false,
        MetricType::Counter => format == Format::Text004,
        _ => true,
    }
}

/// Go's ParseFloat and Rust's differ only in forms exporters do not write (hex, `_`).
fn parse_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// A label value PostgreSQL can store: a NUL byte is refused with the label named. The whole
/// scrape fails, as for any other malformed line, so the target shows as down with the reason
/// instead of its samples jamming the writer.
fn storable_value(name: &str, value: String) -> Result<String, String> {
    if value.contains('\0') {
        return Err(format!(
            "the value of label {name:?} holds a NUL byte (0x00), which PostgreSQL cannot store; fix the exporter's label value"
        ));
    }
    Ok(value)
}

fn unescape_help(s: &str, format: Format) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            // 0.0.4 HELP does not escape quotes, so `\"` stays as written there.
            Some('"') if format == Format::OpenMetrics => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Quotes a piece of input for an error message, shortened so a garbage body does not flood
/// the log.
fn preview(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    /// Skips spaces and tabs; returns whether it skipped any.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }
    /// Everything up to the next space or tab.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while !matches!(self.peek(), None | Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    fn ident(&mut self, allow_colon: bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let ok = c == b'_'
                || c.is_ascii_alphabetic()
                || (allow_colon && c == b':')
                || (self.pos > start && c.is_ascii_digit());
            if !ok {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    fn metric_name(&mut self) -> Result<&'a str, String> {
        let name = self.ident(true);
        if name.is_empty() {
            return Err(format!(
                "expected a metric name at the start of the line, found {}; names match [a-zA-Z_:][a-zA-Z0-9_:]*",
                preview(self.rest())
            ));
        }
        Ok(name)
    }
    /// Parses `{name="value",...}` (trailing comma allowed) into `pairs`.
    fn label_set(&mut self, pairs: &mut Vec<(&'a str, String)>) -> Result<(), String> {
        self.pos += 1; // '{'
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(());
            }
            let name = self.ident(false);
            if name.is_empty() {
                return Err(match self.peek() {
                    None => "unterminated label set: expected a label name or \"}\", found the end of the line".to_string(),
                    Some(_) => format!(
                        "expected a label name or \"}}\", found {}; label names match [a-zA-Z_][a-zA-Z0-9_]*",
                        preview(self.rest())
                    ),
                });
            }
            if name == "__name__" {
                return Err("label \"__name__\" is not allowed in a sample; write the metric name before the \"{\"".to_string());
            }
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return Err(format!(
                    "expected \"=\" after label name {name:?}, found {}",
                    preview(self.rest())
                ));
            }
            self.pos += 1;
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(format!(
                    "expected a quoted value after {name}=, found {}; label values are written \"like this\"",
                    preview(self.rest())
                ));
            }
            self.pos += 1;
            let value = self.label_value(name)?;
            pairs.push((name, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    return Err(format!(
                        "expected \",\" or \"}}\" after the value of label {name:?}, found {}",
                        if self.at_end() {
                            "the end of the line".to_string()
                        } else {
                            preview(self.rest())
                        }
                    ))
                }
            }
        }
    }
    /// Reads a label value after its opening quote, unescaping `\\`, `\"` and `\n`.
    fn label_value(&mut self, name: &str) -> Result<String, String> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        // Fast path: most values have no escapes.
        while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\\' {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'"' {
            self.pos = i + 1;
            return storable_value(name, self.s[start..i].to_string());
        }
        let mut out = String::from(&self.s[start..i]);
        let mut chars = self.s[i..].char_indices();
        while let Some((off, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = i + off + 1;
                    return storable_value(name, out);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(format!(
            "unterminated value of label {name:?}: add the closing quote"
        ))
    }
    /// Parses and validates ` # {labels} value [timestamp]` after a sample.
    fn exemplar(&mut self) -> Result<(), String> {
        if !self.rest().starts_with("# {") && !self.rest().starts_with("#{") {
            return Err(format!(
                "expected an exemplar \"# {{labels}} value [timestamp]\" after the value, found {}",
                preview(self.rest())
            ));
        }
        self.pos += 1;
        self.skip_ws();
        let mut pairs = Vec::new();
        self.label_set(&mut pairs)?;
        let runes: usize = pairs
            .iter()
            .map(|(k, v)| k.chars().count() + v.chars().count())
            .sum();
        if runes > 128 {
            return Err(format!(
                "exemplar labels are {runes} characters long; OpenMetrics allows at most 128"
            ));
        }
        self.skip_ws();
        let v = self.token();
        if parse_float(v).is_none() {
            return Err(format!(
                "expected the exemplar's float value, found {}",
                preview(v)
            ));
        }
        self.skip_ws();
        if !self.at_end() {
            let t = self.token();
            if parse_float(t).filter(|t| t.is_finite()).is_none() {
                return Err(format!(
                    "expected the exemplar's timestamp in seconds, found {}",
                    preview(t)
                ));
            }
            self.skip_ws();
            if !self.at_end() {
                return Err(format!(
                    "unexpected text after the exemplar: {}",
                    preview(self.rest())
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: i64 = 1_700_000_000_000;

    fn err(body: &str, format: Format) -> ParseError {
        parse(body, format, TS).expect_err("body should be rejected")
    }

    fn only(body: &str, format: Format) -> TimeSeries {
        let b = parse(body, format, TS).unwrap();
        assert_eq!(b.series.len(), 1, "{:?}", b.series);
        b.series.into_iter().next().unwrap()
    }

    #[test]
    fn content_type_selects_openmetrics_only_for_its_media_type() {
        assert_eq!(
            format_from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            format_from_content_type(Some("Application/OpenMetrics-Text")),
            Format::OpenMetrics
        );
        assert_eq!(
            format_from_content_type(Some("text/plain; version=0.0.4")),
            Format::Text004
        );
        assert_eq!(format_from_content_type(Some("text/html")), Format::Text004);
        assert_eq!(format_from_content_type(None), Format::Text004);
    }

    #[test]
    fn error_display_names_the_line() {
        let e = err("# TYPE a gauge\na 1\nb{x=\"1\"} abc\n", Format::Text004);
        assert_eq!(e.line, 3);
        assert_eq!(
            e.to_string(),
            "line 3: expected a float value after the labels, found \"abc\""
        );
    }

    #[test]
    fn malformed_lines_are_rejected_with_line_and_reason() {
        for (body, line, needle) in [
            ("a 1\n1abc 2\n", 2, "expected a metric name"),
            (
                "a{x=\"1\" 2\n",
                1,
                "expected \",\" or \"}\" after the value of label \"x\"",
            ),
            ("a{x=1} 2\n", 1, "expected a quoted value after x="),
            ("a{x=\"1} 2\n", 1, "unterminated value of label \"x\""),
            ("a{x} 2\n", 1, "expected \"=\" after label name \"x\""),
            ("a{x=\"1\",x=\"2\"} 2\n", 1, "label \"x\" appears twice"),
            ("a{9=\"1\"} 2\n", 1, "expected a label name"),
            ("a\n", 1, "expected a value after \"a\""),
            ("a{b=\"c\"}\n", 1, "expected a value after"),
            (
                "a 1 1.5\n",
                1,
                "expected an integer timestamp in milliseconds",
            ),
            (
                "a 1 2 3\n",
                1,
                "unexpected text after the value and timestamp",
            ),
            (
                "a 1 # {t=\"x\"} 1\n",
                1,
                "text format 0.0.4 has no exemplars",
            ),
            (
                "# TYPE a gaugee\n",
                1,
                "unknown metric type \"gaugee\"; use one of counter, gauge",
            ),
            (
                "# TYPE a gauge\n# TYPE a counter\n",
                2,
                "second \"# TYPE\" line",
            ),
            (
                "# HELP 1a x\n",
                1,
                "expected a metric family name after \"# HELP\"",
            ),
            (
                "a 1\n# TYPE a gauge\n",
                2,
                "comes after samples of that family",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
                2,
                "label le=\"x\" of \"h_bucket\" is not a number",
            ),
            (
                "# TYPE h histogram\nh_bucket 1\n",
                2,
                "needs a \"le\" label",
            ),
            ("# TYPE s summary\ns 1\n", 2, "needs a \"quantile\" label"),
            ("a{__name__=\"b\"} 1\n", 1, "\"__name__\" is not allowed"),
        ] {
            let e = err(body, Format::Text004);
            assert_eq!(e.line, line, "{body:?}: {e}");
            assert!(e.message.contains(needle), "{body:?}: {e}");
        }
    }

    #[test]
    fn openmetrics_rejections_say_what_to_fix() {
        for (body, line, needle) in [
            ("# TYPE a gauge\na 1\n", 3, "missing \"# EOF\""),
            ("a 1\n# EOF\nb 2\n", 3, "unexpected content after \"# EOF\""),
            ("a 1\n\n# EOF\n", 2, "does not allow blank lines"),
            ("# random comment\n# EOF\n", 1, "only allows \"# HELP\""),
            (
                "# TYPE c counter\nc 1\n# EOF\n",
                2,
                "must be named c_total or c_created",
            ),
            (
                "# TYPE h histogram\nh 1\n# EOF\n",
                2,
                "must be named h_bucket or h_sum",
            ),
            (
                "# TYPE c counter\nc_total 1\n# TYPE g gauge\ng 1\nc_total{a=\"1\"} 1\n# EOF\n",
                5,
                "comes after other families",
            ),
            (
                "# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n",
                2,
                "allows exemplars only on counter _total",
            ),
            (
                "# TYPE c counter\nc_total 1 # {a=\"b\"} x\n# EOF\n",
                2,
                "exemplar's float value",
            ),
            (
                "# TYPE c counter\nc_total 1 # {a=\"b\"} 1 y\n# EOF\n",
                2,
                "exemplar's timestamp",
            ),
            (
                "# TYPE c counter\nc_total 1 abc\n# EOF\n",
                2,
                "timestamp in seconds",
            ),
            (
                "# TYPE a_bytes gauge\n# UNIT a_bytes seconds\n# EOF\n",
                2,
                "not a suffix",
            ),
            (
                "# TYPE s stateset\ns{x=\"1\"} 1\n# EOF\n",
                2,
                "needs a label named \"s\"",
            ),
            (
                "# TYPE a untyped\n# EOF\n",
                1,
                "use one of counter, gauge, histogram, gaugehistogram",
            ),
        ] {
            let e = err(body, Format::OpenMetrics);
            assert_eq!(e.line, line, "{body:?}: {e}");
            assert!(e.message.contains(needle), "{body:?}: {e}");
        }
        let long = format!(
            "# TYPE c counter\nc_total 1 # {{a=\"{}\"}} 1\n# EOF\n",
            "x".repeat(130)
        );
        assert!(err(&long, Format::OpenMetrics)
            .message
            .contains("at most 128"));
    }

    #[test]
    fn nul_bytes_in_label_values_and_help_refuse_the_body_naming_line_and_label() {
        for format in [Format::Text004, Format::OpenMetrics] {
            let e = err("ok 1\nup{job=\"a\0b\"} 1\n# EOF\n", format);
            assert_eq!(e.line, 2);
            assert!(
                e.message
                    .starts_with("the value of label \"job\" holds a NUL byte"),
                "{e}"
            );
            // The escaped path too.
            let e = err("up{job=\"a\\n\0\"} 1\n# EOF\n", format);
            assert!(e.message.contains("NUL byte"), "{e}");
            let e = err("# HELP up Up\0.\nup 1\n# EOF\n", format);
            assert!(e.message.contains("\"# HELP\" text of \"up\""), "{e}");
        }
    }

    #[test]
    fn label_values_unescape_and_empty_values_are_absent() {
        let s = only(
            "m{b=\"load \\\"orders\\\"\",a=\"C:\\\\data\\\\in\",c=\"x\\ny\",d=\"\",e=\"caf\u{e9}\\t\"} 1\n",
            Format::Text004,
        );
        let l = &s.key.labels;
        assert_eq!(l.get("b"), Some("load \"orders\""));
        assert_eq!(l.get("a"), Some("C:\\data\\in"));
        assert_eq!(l.get("c"), Some("x\ny"));
        assert_eq!(l.get("d"), None);
        // Unknown escapes are kept as written, like Prometheus does.
        assert_eq!(l.get("e"), Some("caf\u{e9}\\t"));
        assert_eq!(l.len(), 4);
    }

    #[test]
    fn help_unescapes_backslash_and_newline_but_not_quotes_in_text_004() {
        let b = parse("# HELP m a \\\\ b\\nc \\\"q\\\"\n", Format::Text004, TS).unwrap();
        assert_eq!(b.metadata[0].help, "a \\ b\nc \\\"q\\\"");
        let b = parse(
            "# HELP m a \\\\ b\\nc \\\"q\\\"\n# EOF\n",
            Format::OpenMetrics,
            TS,
        )
        .unwrap();
        assert_eq!(b.metadata[0].help, "a \\ b\nc \"q\"");
    }

    #[test]
    fn timestamps_are_ms_in_text_and_seconds_in_openmetrics() {
        assert_eq!(
            only("a 1 1795707619751\n", Format::Text004).samples[0].ts,
            1_795_707_619_751
        );
        assert_eq!(only("a 1 -5\n", Format::Text004).samples[0].ts, -5);
        assert_eq!(only("a 1\n", Format::Text004).samples[0].ts, TS);
        assert_eq!(
            only("a 1 1795707619.7510126\n# EOF\n", Format::OpenMetrics).samples[0].ts,
            1_795_707_619_751
        );
        assert_eq!(
            only("a 1 17\n# EOF", Format::OpenMetrics).samples[0].ts,
            17_000
        );
    }

    #[test]
    fn special_values_parse_as_floats() {
        let b = parse(
            "a{k=\"1\"} NaN\na{k=\"2\"} +Inf\na{k=\"3\"} -Inf\na{k=\"4\"} 1e-300\na{k=\"5\"} -0\n",
            Format::Text004,
            TS,
        )
        .unwrap();
        let v: Vec<f64> = b.series.iter().map(|s| s.samples[0].value).collect();
        assert!(v[0].is_nan());
        assert_eq!(v[1], f64::INFINITY);
        assert_eq!(v[2], f64::NEG_INFINITY);
        assert_eq!(v[3], 1e-300);
        assert!(v[4] == 0.0 && v[4].is_sign_negative());
    }

    #[test]
    fn duplicate_series_keeps_the_first_sample_but_other_timestamps_are_kept() {
        let b = parse(
            "a{x=\"1\"} 1\na{x=\"1\"} 2\na{x=\"1\"} 3 5\n",
            Format::Text004,
            TS,
        )
        .unwrap();
        assert_eq!(b.series.len(), 1);
        assert_eq!(
            b.series[0].samples,
            vec![Sample { ts: TS, value: 1.0 }, Sample { ts: 5, value: 3.0 }]
        );
    }

    #[test]
    fn histogram_and_summary_series_carry_the_family_type() {
        let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\nloose 4\n";
        let b = parse(body, Format::Text004, TS).unwrap();
        let types: Vec<(&str, MetricType)> = b
            .series
            .iter()
            .map(|s| (s.key.metric.as_str(), s.metric_type))
            .collect();
        assert_eq!(
            types,
            vec![
                ("h_bucket", MetricType::Histogram),
                ("h_bucket", MetricType::Histogram),
                ("h_sum", MetricType::Histogram),
                ("h_count", MetricType::Histogram),
                ("s", MetricType::Summary),
                ("s_sum", MetricType::Summary),
                ("s_count", MetricType::Summary),
                ("loose", MetricType::Untyped),
            ]
        );
        // Only declared families get metadata; `loose` had no TYPE/HELP.
        assert_eq!(
            b.metadata
                .iter()
                .map(|m| m.family.as_str())
                .collect::<Vec<_>>(),
            vec!["h", "s"]
        );
    }

    #[test]
    fn openmetrics_counter_family_owns_total_and_created() {
        let body = "# TYPE c counter\n# HELP c Rows.\nc_total{t=\"a\"} 3 # {trace_id=\"x\"} 1 1.5\nc_created{t=\"a\"} 1.7e9\n\
                    # TYPE i info\ni_info{v=\"1\"} 1\n# TYPE st stateset\nst{st=\"on\"} 1\n# TYPE u unknown\nu 1\n# EOF\n";
        let b = parse(body, Format::OpenMetrics, TS).unwrap();
        let types: Vec<(&str, MetricType)> = b
            .series
            .iter()
            .map(|s| (s.key.metric.as_str(), s.metric_type))
            .collect();
        assert_eq!(
            types,
            vec![
                ("c_total", MetricType::Counter),
                ("c_created", MetricType::Counter),
                ("i_info", MetricType::Info),
                ("st", MetricType::StateSet),
                ("u", MetricType::Untyped),
            ]
        );
        assert_eq!(b.metadata[0].help, "Rows.");
    }

    #[test]
    fn eof_without_trailing_newline_and_crlf_lines_are_accepted() {
        assert_eq!(
            parse("a 1\r\n# EOF", Format::OpenMetrics, TS)
                .unwrap()
                .series
                .len(),
            1
        );
        assert!(parse("", Format::Text004, TS).unwrap().is_empty());
        assert!(parse("# EOF\n", Format::OpenMetrics, TS)
            .unwrap()
            .is_empty());
    }
}
