//! The Numenta Anomaly Benchmark's text formats, as pure functions: a data file
//! (`timestamp,value`) in, a results file (`timestamp,anomaly_score`, one row per data row, in
//! file order) out, scored by the same [`StreamingEnsemble`] every caller gets. The command line
//! only walks directories around these.

use crate::detect::{StreamingDetector, StreamingEnsemble};
use chrono::NaiveDateTime;

/// One data row.
#[derive(Debug, Clone, PartialEq)]
pub struct NabRow {
    /// The timestamp text as written, echoed into the results file.
    pub timestamp: String,
    /// The same time as Unix seconds (NAB times carry no zone; they are read as UTC).
    pub t: i64,
    pub value: f64,
}

/// Why a data file could not be read; each names the line and what to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NabError {
    #[error("the header must be `timestamp,value`, found `{0}`")]
    Header(String),
    #[error("line {line}: expected `timestamp,value`, found `{text}`")]
    Columns { line: usize, text: String },
    #[error("line {line}: timestamp `{text}` is not `YYYY-MM-DD HH:MM:SS`")]
    Timestamp { line: usize, text: String },
    #[error("line {line}: value `{text}` is not a number")]
    Value { line: usize, text: String },
}

/// Parses a NAB data file. Rows stay in file order: NAB scores by position, and some files
/// repeat or reorder timestamps.
pub fn parse_data(text: &str) -> Result<Vec<NabRow>, NabError> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
    if header != "timestamp,value" {
        return Err(NabError::Header(header.to_string()));
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((ts, val)) = line.split_once(',') else {
            return Err(NabError::Columns {
                line: line_no,
                text: line.into(),
            });
        };
        let t = NaiveDateTime::parse_from_str(ts.trim(), "%Y-%m-%d %H:%M:%S")
            .map_err(|_| NabError::Timestamp {
                line: line_no,
                text: ts.into(),
            })?
            .and_utc()
            .timestamp();
        let value = val.trim().parse::<f64>().map_err(|_| NabError::Value {
            line: line_no,
            text: val.into(),
        })?;
        rows.push(NabRow {
            timestamp: ts.trim().to_string(),
            t,
            value,
        });
    }
    Ok(rows)
}

/// Streams the rows through a detector: score `i` depends on rows `0..=i` only.
pub fn run(rows: &[NabRow], detector: &mut dyn StreamingDetector) -> Vec<f64> {
    rows.iter().map(|r| detector.observe(r.t, r.value)).collect()
}

/// Writes a results file: header `timestamp,anomaly_score`, one row per data row.
pub fn write_results(rows: &[NabRow], scores: &[f64]) -> String {
    let mut out = String::with_capacity(rows.len() * 32);
    out.push_str("timestamp,anomaly_score\n");
    for (r, s) in rows.iter().zip(scores) {
        out.push_str(&r.timestamp);
        out.push(',');
        out.push_str(&format!("{s:.6}"));
        out.push('\n');
    }
    out
}

/// A data file's text in, its results file's text out, with the default ensemble: the one
/// configuration used for every file.
pub fn score_file(text: &str) -> Result<String, NabError> {
    let rows = parse_data(text)?;
    let scores = run(&rows, &mut StreamingEnsemble::default());
    Ok(write_results(&rows, &scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_file_order_and_repeated_timestamps() {
        let rows = parse_data(
            "timestamp,value\n2014-03-09 03:00:00,1.5\n2014-03-09 03:00:00,2\n2014-03-09 02:55:00,3e2\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].t, rows[1].t);
        assert_eq!(rows[2].value, 300.0);
        assert_eq!(rows[0].timestamp, "2014-03-09 03:00:00");
    }

    #[test]
    fn bad_input_names_the_line_and_the_problem() {
        assert_eq!(
            parse_data("time,value\n"),
            Err(NabError::Header("time,value".into()))
        );
        let e = parse_data("timestamp,value\n2014-03-09 03:00:00,abc\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: value `abc` is not a number");
        let e = parse_data("timestamp,value\n2014-03-09,1\n").unwrap_err();
        assert!(matches!(e, NabError::Timestamp { line: 2, .. }), "{e}");
    }

    #[test]
    fn results_have_one_row_per_data_row() {
        let mut text = String::from("timestamp,value\n");
        for i in 0..400 {
            text.push_str(&format!("2014-01-01 {:02}:{:02}:00,{}\n", (i / 12) % 24, (i % 12) * 5, i % 7));
        }
        let out = score_file(&text).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "timestamp,anomaly_score");
        assert_eq!(lines.len(), 401);
    }
}
