//! OTel metric names and units to Prometheus metric names, as the OpenTelemetry specification
//! "Prometheus and OpenMetrics Compatibility" and Prometheus' `otlptranslator` (with metric
//! suffixes, underscore escaping) do it: see the rules in [`super`]'s module docs.

/// How a metric's name is finished.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NameKind {
    Counter,
    Gauge,
    Other,
}

/// The Prometheus word for an OTel (UCUM) unit, `{annotations}` dropped; `""` when none.
pub fn prometheus_unit(unit: &str) -> String {
    let stripped = strip_annotations(unit);
    let (main, per) = match stripped.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (stripped.trim(), None),
    };
    let main = match main {
        "1" | "" => String::new(),
        m => unit_word(m)
            .map(str::to_string)
            .unwrap_or_else(|| sanitize_word(m)),
    };
    let per = per.filter(|p| !p.is_empty()).map(|p| {
        per_unit_word(p)
            .map(str::to_string)
            .unwrap_or_else(|| sanitize_word(p))
    });
    match (main.is_empty(), per) {
        (_, None) => main,
        (true, Some(p)) => format!("per_{p}"),
        (false, Some(p)) => format!("{main}_per_{p}"),
    }
}

pub(super) fn strip_annotations(unit: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn sanitize_word(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// The Prometheus metric name for an OTel metric (see module docs); `None` when the name has
/// no letters or digits.
pub(super) fn metric_name(name: &str, unit: &str, kind: NameKind) -> Option<String> {
    let mut tokens: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return None;
    }
    let unit_suffix = prometheus_unit(unit);
    if !unit_suffix.is_empty() {
        let (main, per) = match unit_suffix.find("per_") {
            Some(0) => ("", Some(&unit_suffix[4..])),
            Some(i) => (&unit_suffix[..i - 1], Some(&unit_suffix[i + 4..])),
            None => (unit_suffix.as_str(), None),
        };
        if !main.is_empty() && !tokens.iter().any(|t| t == main) {
            tokens.extend(main.split('_').map(str::to_string));
        }
        if let Some(per) = per {
            if !tokens.iter().any(|t| t == per) {
                tokens.push("per".into());
                tokens.extend(per.split('_').map(str::to_string));
            }
        }
    }
    if kind == NameKind::Gauge
        && strip_annotations(unit).trim() == "1"
        && !tokens.iter().any(|t| t == "ratio")
    {
        tokens.push("ratio".into());
    }
    if kind == NameKind::Counter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_otel_prometheus_conventions() {
        let c = NameKind::Counter;
        let g = NameKind::Gauge;
        let o = NameKind::Other;
        assert_eq!(
            metric_name("etl.rows.processed", "{row}", c).unwrap(),
            "etl_rows_processed_total"
        );
        assert_eq!(
            metric_name("etl.bytes.read", "By", c).unwrap(),
            "etl_bytes_read_total"
        );
        assert_eq!(
            metric_name("etl.batch.lag", "s", g).unwrap(),
            "etl_batch_lag_seconds"
        );
        assert_eq!(
            metric_name("etl.step.duration", "ms", o).unwrap(),
            "etl_step_duration_milliseconds"
        );
        assert_eq!(
            metric_name("etl.worker.memory", "MiBy", g).unwrap(),
            "etl_worker_memory_mebibytes"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", g).unwrap(),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", c).unwrap(),
            "cpu_utilization_total"
        );
        assert_eq!(
            metric_name("net.io", "By/s", g).unwrap(),
            "net_io_bytes_per_second"
        );
        assert_eq!(
            metric_name("requests.total", "", c).unwrap(),
            "requests_total"
        );
        assert_eq!(metric_name("2xx.count", "", g).unwrap(), "_2xx_count");
        assert_eq!(metric_name("...", "", g), None);
    }
}
