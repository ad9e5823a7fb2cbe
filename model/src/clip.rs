//! Bounded text for log lines, error bodies and stored evidence: a value a sender controls
//! (a label set, a selector, an attribute) is cut at a byte budget and says so, instead of
//! turning one hostile request into a megabyte-long log line or answer.
//!
//! A cut value ends in `… (N bytes)`, N being the size of the whole value, so a reader knows
//! it was truncated and by how much.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// How much of a sender's value a log line or error message shows.
pub const MESSAGE_VALUE_BYTES: usize = 200;

/// `s` cut to at most `max` bytes (at a character boundary) followed by `… (N bytes)`, or `s`
/// itself when it fits.
///
/// ```
/// assert_eq!(model::clip::clip("short", 10), "short");
/// assert_eq!(model::clip::clip("abcdefghij", 4), "abcd… (10 bytes)");
/// ```
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let end = floor_char_boundary(s, max);
    Cow::Owned(format!("{}… ({} bytes)", &s[..end], s.len()))
}

/// The `Display` of `value`, cut like [`clip`], without ever holding more than `max` bytes of
/// it: a series with 300,000 labels is formatted once to count its size, not kept.
pub fn clip_display(value: &dyn fmt::Display, max: usize) -> String {
    let mut w = Bounded {
        kept: String::new(),
        total: 0,
        max,
    };
    // Bounded never fails; a Display impl that errors leaves what it wrote so far.
    let _ = write!(w, "{value}");
    if w.total <= max {
        w.kept
    } else {
        let end = floor_char_boundary(&w.kept, max);
        w.kept.truncate(end);
        format!("{}… ({} bytes)", w.kept, w.total)
    }
}

struct Bounded {
    kept: String,
    total: usize,
    max: usize,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total += s.len();
        // Keep up to a character past the budget so the cut lands on a boundary.
        let room = (self.max + 4).saturating_sub(self.kept.len());
        if room > 0 {
            let end = floor_char_boundary(s, room.min(s.len()));
            self.kept.push_str(&s[..end]);
        }
        Ok(())
    }
}

/// How much of a JSON document ([`clip_json`]) is kept, and the config keys to name when
/// something is cut. 0 turns a bound off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonBudget {
    /// Entries per object (attribute maps).
    pub max_entries: usize,
    pub entries_limit: &'static str,
    /// Items per array (events, links, array values).
    pub max_items: usize,
    pub items_limit: &'static str,
    /// Bytes per string.
    pub max_string_bytes: usize,
    /// Bytes of all keys and strings together.
    pub max_total_bytes: usize,
    pub total_limit: &'static str,
}

/// The key an object gains when entries were dropped from it; its value says how many and by
/// which limit.
pub const TRUNCATED_KEY: &str = "pipewatch.truncated";

/// Cuts `v` to `budget` in place, depth first in document order: long strings end in
/// `… (N bytes)`, an object over its entry count or the total budget keeps its first entries
/// plus [`TRUNCATED_KEY`], an array keeps its first items plus a note string. Returns whether
/// anything was cut.
pub fn clip_json(v: &mut serde_json::Value, budget: &JsonBudget) -> bool {
    let mut remaining = if budget.max_total_bytes == 0 {
        usize::MAX
    } else {
        budget.max_total_bytes
    };
    clip_value(v, budget, &mut remaining)
}

fn clip_value(v: &mut serde_json::Value, b: &JsonBudget, remaining: &mut usize) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            let mut cut = false;
            if b.max_string_bytes > 0 && s.len() > b.max_string_bytes {
                *s = clip(s, b.max_string_bytes).into_owned();
                cut = true;
            }
            if s.len() > *remaining {
                *s = clip(s, *remaining).into_owned();
                cut = true;
            }
            *remaining = remaining.saturating_sub(s.len());
            cut
        }
        Value::Array(items) => {
            let total = items.len();
            let mut cut = false;
            if b.max_items > 0 && total > b.max_items {
                items.truncate(b.max_items);
                cut = true;
            }
            let mut kept = 0;
            for item in items.iter_mut() {
                if *remaining == 0 {
                    break;
                }
                cut |= clip_value(item, b, remaining);
                kept += 1;
            }
            if kept < items.len() {
                items.truncate(kept);
                cut = true;
            }
            if kept < total {
                let limit = if *remaining == 0 {
                    b.total_limit
                } else {
                    b.items_limit
                };
                items.push(Value::String(format!(
                    "… {} of {total} items dropped ({limit})",
                    total - kept
                )));
            }
            cut
        }
        Value::Object(map) => {
            let total = map.len();
            let mut cut = false;
            let mut kept = 0;
            let keys: Vec<String> = map.keys().cloned().collect();
            let mut by_total = false;
            for k in keys {
                let over_count = b.max_entries > 0 && kept >= b.max_entries;
                if over_count || *remaining == 0 {
                    by_total |= !over_count;
                    map.remove(&k);
                    cut = true;
                    continue;
                }
                *remaining = remaining.saturating_sub(k.len());
                if let Some(child) = map.get_mut(&k) {
                    cut |= clip_value(child, b, remaining);
                }
                kept += 1;
            }
            if kept < total {
                let limit = if by_total {
                    b.total_limit
                } else {
                    b.entries_limit
                };
                map.insert(
                    TRUNCATED_KEY.into(),
                    Value::String(format!(
                        "{} of {total} entries dropped ({limit})",
                        total - kept
                    )),
                );
            }
            cut
        }
        _ => false,
    }
}

/// The largest char boundary of `s` at or below `i`.
pub fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut end = i.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_at_a_char_boundary_and_say_their_size() {
        let s = "é".repeat(300);
        let c = clip(&s, 201);
        assert!(c.starts_with(&"é".repeat(100)), "{c}");
        assert!(c.ends_with("… (600 bytes)"), "{c}");
        assert_eq!(clip("fits", 4), "fits");
    }

    const BUDGET: JsonBudget = JsonBudget {
        max_entries: 3,
        entries_limit: "limits.max_evidence_attributes",
        max_items: 2,
        items_limit: "limits.max_evidence_events",
        max_string_bytes: 10,
        max_total_bytes: 60,
        total_limit: "limits.max_evidence_bytes",
    };

    #[test]
    fn json_is_cut_by_count_length_and_total_and_says_so() {
        let mut v = serde_json::json!({
            "a": "x".repeat(25),
            "b": [1, 2, 3, 4],
            "c": "ok",
            "d": "dropped by count",
            "e": "dropped by count",
        });
        assert!(clip_json(&mut v, &BUDGET));
        assert_eq!(v["a"], format!("{}… (25 bytes)", "x".repeat(10)));
        assert_eq!(
            v["b"],
            serde_json::json!([1, 2, "… 2 of 4 items dropped (limits.max_evidence_events)"])
        );
        assert_eq!(v["c"], "ok");
        assert_eq!(
            v[TRUNCATED_KEY],
            "2 of 5 entries dropped (limits.max_evidence_attributes)"
        );
        // One million attributes keep a bounded few, whatever their size.
        let big: serde_json::Map<String, serde_json::Value> = (0..1_000_000)
            .map(|i| {
                (
                    format!("k{i:07}"),
                    serde_json::Value::String("v".repeat(17)),
                )
            })
            .collect();
        let mut v = serde_json::json!({ "attributes": big });
        let budget = JsonBudget {
            max_entries: 0,
            ..BUDGET
        };
        assert!(clip_json(&mut v, &budget));
        let out = serde_json::to_string(&v).unwrap();
        assert!(out.len() < 400, "{out}");
        assert!(
            out.contains("entries dropped (limits.max_evidence_bytes)"),
            "{out}"
        );
        // Within every bound nothing changes.
        let mut small = serde_json::json!({"a": "b", "c": [1]});
        assert!(!clip_json(&mut small, &BUDGET));
        assert_eq!(small, serde_json::json!({"a": "b", "c": [1]}));
    }

    #[test]
    fn display_is_counted_whole_but_kept_bounded() {
        let labels = crate::Labels::from_pairs((0..10_000).map(|i| (format!("l{i:05}"), "v")));
        let key = crate::SeriesKey::new("big", labels);
        let full = key.to_string();
        let c = clip_display(&key, 200);
        assert!(c.len() < 240, "{}", c.len());
        assert!(c.starts_with(&full[..200]));
        assert!(c.ends_with(&format!("… ({} bytes)", full.len())), "{c}");
        assert_eq!(clip_display(&"short", 200), "short");
    }
}
