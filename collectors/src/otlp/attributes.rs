//! OTLP attributes to Prometheus labels, one mapping for every signal: label names
//! sanitised like Prometheus' `otlptranslator`, attribute values as label values, and the
//! `job`/`instance` a resource's service attributes stand for.

use super::view::{Attr, Value};
use model::Labels;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::BTreeMap;

/// Prometheus' float formatting for label values: shortest round-trip form, `+Inf`/`-Inf`/`NaN`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// What the OpenTelemetry SDKs report when the application set no `service.name`, and so
/// the service of a resource without one, for every signal.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The service a resource stands for, and the `job` and `instance` labels that carry it on
/// every series derived from it (metrics, span metrics and log counts alike), so the three
/// signals of one service join on `job`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceIdentity {
    /// `service.name`, or [`UNKNOWN_SERVICE`] when absent or empty.
    pub service_name: String,
    /// `service.namespace/service.name`, or the service name alone without a namespace.
    pub job: String,
    /// `service.instance.id`; empty when absent.
    pub instance: String,
}

impl ResourceIdentity {
    /// The identity of a resource's attributes (values read with [`any_value_string`]).
    pub fn of(resource: Option<&Resource>) -> Self {
        Self::of_attributes(resource.map_or(&[][..], |r| r.attributes.as_slice()))
    }

    pub fn of_attributes(attrs: &[KeyValue]) -> Self {
        Self::of_lookup(|k| {
            attrs
                .iter()
                .find(|kv| kv.key == k)
                .map(|kv| any_value_string(kv.value.as_ref()))
        })
    }

    /// The identity of a resource's attributes in a [`super::view::MetricsView`].
    pub fn of_view(attrs: &[Attr<'_>]) -> Self {
        Self::of_lookup(|k| {
            attrs
                .iter()
                .find(|a| a.key == k)
                .map(|a| value_string(&a.value).into_owned())
        })
    }

    /// The identity from `lookup` (the value of the first attribute with a key, as a string).
    fn of_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let service_name = get("service.name").unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
        let job = match get("service.namespace") {
            Some(ns) => format!("{ns}/{service_name}"),
            None => service_name.clone(),
        };
        Self {
            service_name,
            job,
            instance: get("service.instance.id").unwrap_or_default(),
        }
    }
}

/// The first label of `labels` whose name or value PostgreSQL text cannot store (a NUL byte;
/// every other character of a Rust string is valid UTF-8 PostgreSQL accepts), as a message
/// naming it, or `None` when all can be stored.
pub fn unstorable_label(labels: &Labels) -> Option<String> {
    // Byte search first (every label of every OTLP point passes here): `str::contains` with a
    // char pattern set up a searcher per call and was 2.4 % of OTLP's CPU in a profile.
    if !labels
        .iter()
        .any(|(k, v)| k.as_bytes().contains(&0) || v.as_bytes().contains(&0))
    {
        return None;
    }
    labels.iter().find_map(|(k, v)| {
        if k.contains('\0') {
            Some(format!("label name {:?} holds a NUL byte (0x00)", k))
        } else if v.contains('\0') {
            Some(format!("the value of label {k:?} holds a NUL byte (0x00)"))
        } else {
            None
        }
    })
}

/// Text as PostgreSQL can store it: NUL bytes become U+FFFD. For evidence that people read
/// (span names, bodies, attributes), where refusing the record would hide the failure it shows.
pub fn storable_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}").into()
    } else {
        s.into()
    }
}

/// Attributes as sanitised labels; values of attributes whose names collide after
/// sanitising are joined with `;` in the order of the original keys.
pub fn attribute_labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>) -> Labels {
    keyed_labels(attrs.map(|kv| (kv.key.as_str(), any_value_string(kv.value.as_ref()))))
}

/// [`attribute_labels`] of attributes in a [`super::view::MetricsView`].
pub fn view_attribute_labels<'a>(attrs: impl Iterator<Item = &'a Attr<'a>>) -> Labels {
    keyed_labels(attrs.map(|a| (a.key, value_string(&a.value).into_owned())))
}

/// [`attribute_labels`] of (original key, value as a string) pairs.
fn keyed_labels<'a>(attrs: impl Iterator<Item = (&'a str, String)>) -> Labels {
    let mut by_name: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
    for (key, value) in attrs {
        let name = label_name(key);
        if name.is_empty() {
            continue;
        }
        by_name.entry(name).or_default().push((key, value));
    }
    Labels::from_pairs(by_name.into_iter().map(|(name, mut values)| {
        values.sort_by(|a, b| a.0.cmp(b.0));
        let joined: Vec<String> = values.into_iter().map(|(_, v)| v).collect();
        (name, joined.join(";"))
    }))
}

/// A Prometheus label name for an attribute key (otlptranslator's `NormalizeLabel`).
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut s: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s = format!("key_{s}");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s = format!("key{s}");
    }
    s
}

/// An attribute value as a label value: strings as they are, numbers and booleans in their
/// usual text form, arrays and maps as JSON.
pub fn any_value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => {
            let json = any_value_json(other);
            match json {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }
        }
    }
}

/// [`any_value_string`] of a view's value, borrowed when it is a string.
pub fn value_string<'a>(v: &Value<'a>) -> std::borrow::Cow<'a, str> {
    match *v {
        Value::Absent => "".into(),
        Value::Str(s) => s.into(),
        Value::Bool(b) => b.to_string().into(),
        Value::Int(i) => i.to_string().into(),
        Value::Double(d) => format_float(d).into(),
        Value::Other(other) => match any_value_json(other) {
            serde_json::Value::String(s) => s.into(),
            other => other.to_string().into(),
        },
    }
}

fn any_value_json(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => J::String(format_float(*d)),
        any_value::Value::BytesValue(b) => {
            J::String(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        // An index into a profiles string table; metrics carry no table to resolve it.
        any_value::Value::StringValueStrindex(_) => J::Null,
        any_value::Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|x| x.value.as_ref().map(any_value_json).unwrap_or(J::Null))
                .collect(),
        ),
        any_value::Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .and_then(|x| x.value.as_ref())
                            .map(any_value_json)
                            .unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_sanitised_like_prometheus() {
        assert_eq!(label_name("http.route"), "http_route");
        assert_eq!(label_name("2xx"), "key_2xx");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
    }
}
