//! The body of `POST /api/v1/drift/profile`: one column of one dataset (or ML feature) at one
//! time, as its raw values or as a summary made elsewhere.
//!
//! ```json
//! {"dataset": "transform", "column": "basket_value", "time": "2026-12-07T10:00:00Z",
//!  "values": [12.5, 13.0, null, 11.2]}
//! ```
//!
//! `values` are numbers (a numeric column) or strings (a categorical one); `null`s are counted
//! as missing and left out, as Evidently drops missing values before its tests. Instead of
//! `values`, `profile` may carry a summary in the analysis crate's JSON form
//! ([`analysis::drift::ColumnProfile`]: `{"kind": "categorical", "counts": {...}}` or
//! `{"kind": "numeric", ...}` with exact counts and a DataSketches t-digest), so a job that
//! profiles ten million rows sends kilobytes. `time` is Unix seconds or RFC 3339 (default:
//! when the request arrives).
//!
//! Values are folded into the profile while the JSON is read, so a large column never exists
//! twice in memory.

use analysis::drift::{CategoricalProfile, ColumnProfile, NumericProfile, ProfileOptions};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// A parsed body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    pub dataset: String,
    pub column: String,
    #[serde(default)]
    pub time: Option<TimeField>,
    #[serde(default)]
    pub values: Option<Values>,
    #[serde(default)]
    pub profile: Option<ColumnProfile>,
}

/// Unix seconds or an RFC 3339 string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TimeField {
    Seconds(f64),
    Text(String),
}

/// `values`, already folded into a profile.
#[derive(Debug)]
pub struct Values {
    pub profile: ColumnProfile,
    /// `null`s left out.
    pub missing: u64,
}

/// What a body says, checked.
#[derive(Debug)]
pub struct Checked {
    pub dataset: String,
    pub column: String,
    pub time_ms: Option<i64>,
    pub profile: ColumnProfile,
    pub missing: u64,
}

/// Reads and checks a body; the error says what is wrong and what to send.
pub fn parse(bytes: &[u8]) -> Result<Checked, String> {
    let body: ProfileBody = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the body is not a drift profile: {e}; send {{\"dataset\": ..., \"column\": ..., \"values\": [...]}} or a `profile` instead of `values`"
        )
    })?;
    for (key, v) in [("dataset", &body.dataset), ("column", &body.column)] {
        if v.trim().is_empty() {
            return Err(format!(
                "`{key}` is empty: name the dataset (or pipeline node) and the column (or feature) the values belong to"
            ));
        }
        if v.len() > 1024 {
            return Err(format!(
                "`{key}` is {} bytes long; keep it under 1024",
                v.len()
            ));
        }
    }
    let (profile, missing) = match (body.values, body.profile) {
        (Some(v), None) => (v.profile, v.missing),
        (None, Some(p)) => (p, 0),
        (Some(_), Some(_)) => {
            return Err("send either `values` or `profile`, not both".into());
        }
        (None, None) => {
            return Err(
                "no data: send the column's `values` (numbers or strings) or its `profile`".into(),
            )
        }
    };
    if profile.count() == 0 {
        return Err(
            "the profile holds no values (only nulls, or an empty list): send at least one value"
                .into(),
        );
    }
    let time_ms = match body.time {
        None => None,
        Some(TimeField::Seconds(s)) if s.is_finite() && s > 0.0 => Some((s * 1000.0).round() as i64),
        Some(TimeField::Seconds(s)) => {
            return Err(format!(
                "`time` {s} is not a usable Unix time: give seconds since 1970 (1700000000) or RFC 3339"
            ))
        }
        Some(TimeField::Text(t)) => Some(
            humantime::parse_rfc3339_weak(&t)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .ok_or_else(|| {
                    format!(
                        "cannot parse `time` {t:?}: give Unix seconds (1700000000) or RFC 3339 (2024-01-02T15:04:05Z)"
                    )
                })?,
        ),
    };
    Ok(Checked {
        dataset: body.dataset,
        column: body.column,
        time_ms,
        profile,
        missing,
    })
}

/// One element of `values`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Element {
    Number(f64),
    Text(String),
    Missing(()),
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Values, D::Error> {
        d.deserialize_seq(ValuesVisitor)
    }
}

struct ValuesVisitor;

impl<'de> Visitor<'de> for ValuesVisitor {
    type Value = Values;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of numbers or of strings (null for a missing value)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
        let mut numeric: Option<NumericProfile> = None;
        let mut labels: Option<CategoricalProfile> = None;
        let mut missing = 0u64;
        let mut i = 0usize;
        while let Some(e) = seq.next_element::<Element>().map_err(|_| {
            de::Error::custom(format!(
                "values[{i}] is neither a number, a string nor null"
            ))
        })? {
            match e {
                Element::Missing(()) => missing += 1,
                Element::Number(v) => {
                    if labels.is_some() {
                        return Err(de::Error::custom(format!(
                            "values[{i}] is a number but earlier values are strings: send one kind per column (quote numbers that are categories)"
                        )));
                    }
                    numeric
                        .get_or_insert_with(|| NumericProfile::new(ProfileOptions::default()))
                        .push(v);
                }
                Element::Text(s) => {
                    if numeric.is_some() {
                        return Err(de::Error::custom(format!(
                            "values[{i}] is a string but earlier values are numbers: send one kind per column"
                        )));
                    }
                    labels
                        .get_or_insert_with(CategoricalProfile::default)
                        .push(&s);
                }
            }
            i += 1;
        }
        let profile = match (numeric, labels) {
            (Some(n), _) => ColumnProfile::Numeric(n),
            (None, Some(c)) => ColumnProfile::Categorical(c),
            (None, None) => ColumnProfile::Categorical(CategoricalProfile::default()),
        };
        Ok(Values { profile, missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_make_a_numeric_profile_and_nulls_are_missing() {
        let c = parse(
            br#"{"dataset":"transform","column":"basket_value","time":1700000000.5,
                "values":[1.5, 2, null, 3.25]}"#,
        )
        .unwrap();
        assert_eq!(
            (c.dataset.as_str(), c.column.as_str()),
            ("transform", "basket_value")
        );
        assert_eq!(c.time_ms, Some(1_700_000_000_500));
        assert_eq!((c.profile.count(), c.missing), (3, 1));
        let ColumnProfile::Numeric(n) = &c.profile else {
            panic!("{:?}", c.profile)
        };
        assert_eq!((n.min(), n.max()), (Some(1.5), Some(3.25)));
    }

    #[test]
    fn strings_make_a_categorical_profile_and_a_summary_is_taken_as_is() {
        let c = parse(br#"{"dataset":"d","column":"country","time":"2026-12-07T10:00:00Z","values":["de","fr","de"]}"#).unwrap();
        assert_eq!(c.time_ms, Some(1_796_637_600_000));
        let ColumnProfile::Categorical(p) = &c.profile else {
            panic!("{:?}", c.profile)
        };
        assert_eq!(p.counts.get("de"), Some(&2));
        let summary = serde_json::to_vec(&serde_json::json!({
            "dataset": "d", "column": "amount",
            "profile": ColumnProfile::numeric(&[1.0, 2.0, 2.0]),
        }))
        .unwrap();
        let c = parse(&summary).unwrap();
        assert_eq!((c.profile.count(), c.time_ms), (3, None));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        for (body, wanted) in [
            (&br#"{"dataset":"d","column":"c","values":[1,"a"]}"#[..], "values[1] is a string"),
            (br#"{"dataset":"d","column":"c","values":["a",1]}"#, "values[1] is a number"),
            (br#"{"dataset":"d","column":"c","values":[true]}"#, "values[0] is neither"),
            (br#"{"dataset":"","column":"c","values":[1]}"#, "`dataset` is empty"),
            (br#"{"dataset":"d","column":"c"}"#, "send the column's `values`"),
            (br#"{"dataset":"d","column":"c","values":[null]}"#, "holds no values"),
            (br#"{"dataset":"d","column":"c","values":[1],"time":"yesterday"}"#, "cannot parse `time`"),
            (br#"{"dataset":"d","column":"c","values":[1],"colour":"red"}"#, "unknown field `colour`"),
            (br#"{"dataset":"d","column":"c","values":[1],"profile":{"kind":"categorical","counts":{"a":1}}}"#, "not both"),
            (br#"{"dataset":"d","column":"c","profile":{"kind":"numeric","count":3}}"#, "not a drift profile"),
            (b"[1,2]", "not a drift profile"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(wanted), "{}: {e}", String::from_utf8_lossy(body));
        }
    }
}
