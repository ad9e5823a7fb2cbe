//! Collectors turn what pipelines emit into `model` values: bytes in, [`model::Batch`] out.
//!
//! Decoders here never touch the database, and the only network I/O is the scraper's HTTP GET,
//! so everything can be tested with captured bytes and a local HTTP server.

pub mod alerts;
pub mod dq;
pub mod events;
pub mod fuzzing;
pub mod known;
pub mod openlineage;
pub mod otlp;
pub mod prometheus_text;
pub mod protobuf_budget;
pub mod relabel;
pub mod remote_write;
pub mod scrape;
pub mod sd;
