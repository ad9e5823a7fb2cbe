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
//!
//! A decoder whose series keys take work to build from what it read (OTLP: sanitised attribute
//! names, values rendered as text, sorted, the scope's labels, `job` and `instance` merged
//! over them) can also name a series by its *raw* bytes: an unambiguous encoding of everything
//! its key is computed from, so that equal raw bytes always mean the same key (two raw forms
//! may mean one key). It asks [`Known::id_raw`] first; when the resolver does not recognise
//! the raw bytes, the decoder builds the key and hands both to [`Known::id`], which may
//! remember the pair for the next time (as VictoriaMetrics caches raw label bytes).

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
    /// The raw bytes the decoder read the series from, when it names series that way (see
    /// the module header): a resolver that answers this series may remember them.
    pub raw: Option<&'a [u8]>,
}

/// What a decoder asks about every series it reads.
pub trait Known {
    /// The series' id when the caller takes it by id.
    fn id(&mut self, s: &SeriesView<'_>) -> Option<i64>;

    /// The id of the series whose raw bytes are `raw` (see the module header), when the
    /// caller recognises them and takes the series by id. `None` makes the decoder build the
    /// series and ask [`Self::id`].
    fn id_raw(&mut self, raw: &[u8], samples: &[Sample]) -> Option<i64> {
        let _ = (raw, samples);
        None
    }
}

/// A closure is a resolver that knows no raw bytes.
impl<F: FnMut(&SeriesView<'_>) -> Option<i64>> Known for F {
    fn id(&mut self, s: &SeriesView<'_>) -> Option<i64> {
        self(s)
    }
}

/// A resolver that holds no series by id.
pub struct NoneKnown;

impl Known for NoneKnown {
    fn id(&mut self, _: &SeriesView<'_>) -> Option<i64> {
        None
    }
}

/// The resolver a decoder calls per series.
pub type Resolve<'r> = &'r mut dyn Known;

/// Calls `resolve` for the series `metric{labels}` with `samples`, building its key encoding
/// on the stack; `raw` as in [`SeriesView::raw`].
pub fn resolve_series(
    resolve: &mut dyn Known,
    metric: &str,
    labels: &[(&str, &str)],
    samples: &[Sample],
    raw: Option<&[u8]>,
) -> Option<i64> {
    model::labels::with_key_encoding(metric, labels.iter().copied(), |encoding| {
        resolve.id(&SeriesView {
            encoding,
            metric,
            labels,
            samples,
            raw,
        })
    })
}

/// Appends `bytes` to a raw series name with its length in front, so that no two sequences of
/// parts have the same raw bytes.
pub fn put_raw(raw: &mut Vec<u8>, bytes: &[u8]) {
    raw.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    raw.extend_from_slice(bytes);
}
