//! Durations in the config file, written as humantime text ("15s", "500ms", "1m"): parsing and
//! printing are `humantime_serde`'s; this only adds to the error how to write one.

use serde::{Deserializer, Serializer};
use std::time::Duration;

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    humantime_serde::serialize(d, s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    humantime_serde::deserialize(d).map_err(|e: D::Error| {
        serde::de::Error::custom(format!(
            "{e}; write a duration like \"15s\", \"500ms\" or \"1m\""
        ))
    })
}

/// `Option<Duration>` fields (`#[serde(default, with = "duration::option")]`): absent is `None`.
pub mod option {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        humantime_serde::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        humantime_serde::deserialize(d).map_err(|e: D::Error| {
            serde::de::Error::custom(format!(
                "{e}; write a duration like \"7d\", \"12h\" or \"30m\""
            ))
        })
    }
}
