//! Series the caller already holds by id, recognised while a request is decoded.
//!
//! The push decoders (remote_write, OTLP metrics) can hand each series of a request to a
//! resolver before they build its label set: the resolver looks the series' canonical key
//! encoding ([`model::labels::with_key_encoding`]) up in what the store already registered and
//! answers its id when nothing about the series could be refused (the server's resolver
//! checks the intake window and the per-series limits). Series it answers go to the ingest
//! queue as [`model::ResolvedSample`] rows (id, timestamp, value); the others are built and
//! checked as usual. The decoders stay free of I/O: the resolver is the caller's closure.
//!
//! A resolver answers only series the store registered, and PostgreSQL text cannot hold a NUL
//! byte, so a series taken by id needs no NUL check: decoders make theirs only for the series
//! they build.

use model::Sample;

/// One series of a request as a decoder read it, before anything was copied: what a resolver
/// needs to recognise a series it already holds by id.
#[derive(Debug)]
pub struct SeriesView<'a> {
    /// The key's canonical encoding ([`model::labels::with_key_encoding`]).
    pub encoding: &'a [u8],
    pub metric: &'a str,
    /// The labels without `__name__`, sorted by name, values not empty.
    pub labels: &'a [(&'a str, &'a str)],
    pub samples: &'a [Sample],
}

/// The resolver a decoder calls per series: the series' id when the caller takes it by id.
pub type Resolve<'r> = &'r mut dyn FnMut(&SeriesView<'_>) -> Option<i64>;

/// Calls `resolve` for the series `metric{labels}` with `samples`, building its key encoding
/// on the stack.
pub fn resolve_series(
    resolve: &mut dyn FnMut(&SeriesView<'_>) -> Option<i64>,
    metric: &str,
    labels: &[(&str, &str)],
    samples: &[Sample],
) -> Option<i64> {
    model::labels::with_key_encoding(metric, labels.iter().copied(), |encoding| {
        resolve(&SeriesView {
            encoding,
            metric,
            labels,
            samples,
        })
    })
}
