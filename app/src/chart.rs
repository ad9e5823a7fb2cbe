//! Line charts drawn with plotters into an SVG string, identically on the server and in the
//! browser, plus the pixel-to-time mapping of the plotting area that hover and drag-to-zoom
//! use, so that what the pointer is over is exactly the time that is read out.

use crate::timefmt::format_axis;
use model::{ChangeEvent, RangeSeries, TimestampMs};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// The SVG's own size; the page scales it to the column width, and pointer positions are
/// scaled back by the same factor.
pub const CHART_WIDTH: u32 = 1100;
pub const CHART_HEIGHT: u32 = 400;

/// Tableau 10: distinct hues that stay apart for the common kinds of colour blindness.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

pub fn series_color(i: usize) -> (u8, u8, u8) {
    PALETTE[i % PALETTE.len()]
}

pub fn series_css_color(i: usize) -> String {
    let (r, g, b) = series_color(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// What one chart shows: the resolved query and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartData {
    pub selector: String,
    pub start: TimestampMs,
    pub end: TimestampMs,
    pub step_ms: i64,
    pub series: Vec<RangeSeries>,
    /// Series left out because there were too many to draw legibly.
    pub omitted_series: usize,
    /// Change events (deploys, config and schema changes) inside `start..=end`, newest first;
    /// drawn as markers on the time axis.
    #[serde(default)]
    pub events: Vec<ChangeEvent>,
    /// An expected band to shade behind the lines (an anomaly's detail chart).
    #[serde(default)]
    pub band: Option<ExpectedBand>,
    /// Anomalies of the charted signals inside `start..=end`, marked along the time axis.
    #[serde(default)]
    pub anomalies: Vec<AnomalyMark>,
    /// When the query's series last had a sample, if the range holds none (an empty chart
    /// says so and offers that time).
    #[serde(default)]
    pub last_sample: Option<TimestampMs>,
}

/// An anomaly drawn on a chart: a red bar along the time axis over its span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyMark {
    pub id: i64,
    pub from: TimestampMs,
    /// `None` while it is open.
    pub to: Option<TimestampMs>,
    pub severity: String,
    pub explanation: String,
}

/// What a detector expected: values between `low` and `high`, shaded across the whole chart,
/// and the span it flagged (`from` to `to`, `to` open while the anomaly is), tinted on the time
/// axis, so the line is read against both at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedBand {
    /// NaN (no band, only the span; JSON carries it as `null`) or the band's edges.
    #[serde(deserialize_with = "nan_if_null")]
    pub low: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub high: f64,
    pub from: TimestampMs,
    pub to: Option<TimestampMs>,
}

/// JSON has no NaN: serde_json writes it as `null`, which must read back as NaN, or the page
/// that drew a span without a band could not hydrate in the browser.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Fill of the expected band: a light green, read as "normal", under every series colour.
pub const BAND_COLOR: (u8, u8, u8) = (44, 160, 44);
/// Fill of the flagged span: a light red, read as "this is where it went wrong".
pub const SPAN_COLOR: (u8, u8, u8) = (214, 39, 40);

/// Most change-event markers on one chart; more would hide the lines they explain.
pub const MAX_EVENT_MARKERS: u32 = 50;

/// Colour of change-event markers: dark orange, apart from the first series colours and
/// from the grey grid.
pub const EVENT_COLOR: (u8, u8, u8) = (166, 54, 3);

/// The marker's tooltip: `deploy orders_etl 2.0.1: v2 rollout`.
pub fn event_title(e: &ChangeEvent) -> String {
    let version = e
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    if e.detail.is_empty() {
        format!("{} {}{version}", e.kind, e.node)
    } else {
        format!("{} {}{version}: {}", e.kind, e.node, e.detail)
    }
}

/// Where plotters put the plotting area inside the SVG, in SVG pixels, and the times at its
/// edges. Plotters maps `t` to `left + floor((right - left) * (t - start) / (end - start))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlotFrame {
    pub left: i32,
    pub right: i32,
    pub top: i32,
    pub bottom: i32,
    pub start: TimestampMs,
    pub end: TimestampMs,
}

impl PlotFrame {
    /// The time under SVG x coordinate `x`, clamped to the plotted span.
    pub fn time_at(&self, x: f64) -> TimestampMs {
        let frac = ((x - f64::from(self.left)) / f64::from(self.right - self.left)).clamp(0.0, 1.0);
        self.start + (frac * (self.end - self.start) as f64).round() as i64
    }

    /// The SVG x coordinate of time `t` (unclamped, not floored).
    pub fn x_of(&self, t: TimestampMs) -> f64 {
        f64::from(self.left)
            + f64::from(self.right - self.left) * (t - self.start) as f64
                / (self.end - self.start).max(1) as f64
    }

    pub fn contains_x(&self, x: f64) -> bool {
        x >= f64::from(self.left) && x <= f64::from(self.right)
    }
}

/// Short value labels: `1.25k`, `3.2M`, `0.0012`.
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if scaled == scaled.trunc() && scaled.abs() < 1e4 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 100.0 {
        format!("{scaled:.1}")
    } else if scaled.abs() >= 1.0 {
        format!("{scaled:.2}")
    } else {
        format!("{scaled:.4}")
    };
    // `0.5000` reads as more precise than it is; `0.5` does not.
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// Tick spacings for the time axis: round wall-clock steps.
const TICK_STEPS_MS: [i64; 20] = [
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
];

/// Time-axis ticks on round UTC times (every 10 min, every hour, …), at most `max` of them.
pub fn time_ticks(start: TimestampMs, end: TimestampMs, max: i64) -> Vec<TimestampMs> {
    let span = (end - start).max(1);
    let step = TICK_STEPS_MS
        .into_iter()
        .find(|s| span / s <= max)
        .unwrap_or(span / max.max(1) + 1);
    let first = start + (step - start.rem_euclid(step)) % step;
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= end)
        .collect()
}

/// The y range over the visible series, padded so lines do not sit on the frame.
fn value_range(series: &[&RangeSeries], band: Option<&ExpectedBand>) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    // The band counts as data: a line far above it must still show where "normal" was.
    if let Some(b) = band.filter(|b| b.low.is_finite() && b.high.is_finite()) {
        lo = b.low.min(b.high);
        hi = b.low.max(b.high);
    }
    for s in series {
        for &(_, v) in &s.points {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        let pad = (hi.abs() * 0.1).max(1.0);
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    // Counts and rates are usually non-negative: keep zero as the floor when it is close.
    let lo = if lo >= 0.0 && lo - pad < 0.0 {
        0.0
    } else {
        lo - pad
    };
    (lo, hi + pad)
}

/// Splits points into runs without gaps (missing buckets or non-finite values), so a line
/// never bridges a time when the target was down.
fn runs(points: &[(TimestampMs, f64)], step_ms: i64) -> Vec<Vec<(TimestampMs, f64)>> {
    let mut out: Vec<Vec<(TimestampMs, f64)>> = Vec::new();
    let mut cur: Vec<(TimestampMs, f64)> = Vec::new();
    for &(t, v) in points {
        let gap = cur
            .last()
            .is_some_and(|&(pt, _)| t - pt > 2 * step_ms.max(1));
        if (!v.is_finite() || gap) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if v.is_finite() {
            cur.push((t, v));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Draws the chart; `hidden[i]` leaves series `i` out (legend toggles). Returns the SVG and
/// the plotting area's frame.
pub fn render_svg(data: &ChartData, hidden: &[bool]) -> Result<(String, PlotFrame), String> {
    let visible: Vec<(usize, &RangeSeries)> = data
        .series
        .iter()
        .enumerate()
        .filter(|(i, _)| !hidden.get(*i).copied().unwrap_or(false))
        .collect();
    let (y_lo, y_hi) = value_range(
        &visible.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        data.band.as_ref(),
    );
    let (start, end) = (data.start, data.end.max(data.start + 1));
    let span = end - start;
    let mut svg = String::new();
    let frame;
    {
        let root =
            SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| format!("drawing the chart failed: {e:?}");
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(10)
            .margin_right(20)
            .margin_left(6)
            .margin_bottom(4)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (start..end).with_key_points(time_ticks(start, end, 8)),
                y_lo..y_hi,
            )
            .map_err(err)?;
        let label_style = ("sans-serif", 13).into_font().color(&RGBColor(60, 64, 72));
        let x_fmt = |t: &i64| format_axis(*t, span);
        let y_fmt = |v: &f64| format_value(*v);
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_label_style(label_style.clone())
            .y_label_style(label_style)
            .bold_line_style(RGBColor(225, 228, 232))
            .light_line_style(RGBColor(243, 244, 246))
            .axis_style(RGBColor(150, 155, 162))
            .draw()
            .map_err(err)?;
        // Band and span first, so the lines are drawn over them.
        if let Some(band) = &data.band {
            let (br, bg, bb) = BAND_COLOR;
            let (sr, sg, sb) = SPAN_COLOR;
            let from = band.from.clamp(start, end);
            let to = band.to.unwrap_or(end).clamp(start, end);
            if to > from {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, y_lo), (to, y_hi)],
                        RGBColor(sr, sg, sb).mix(0.10).filled(),
                    )))
                    .map_err(err)?;
            }
            if band.low.is_finite() && band.high.is_finite() {
                let (lo, hi) = (band.low.min(band.high), band.low.max(band.high));
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(start, lo.max(y_lo)), (end, hi.min(y_hi))],
                        RGBColor(br, bg, bb).mix(0.18).filled(),
                    )))
                    .map_err(err)?;
            }
        }
        // Anomalies: a faint span across the plot and a solid bar along the time axis.
        let (sr, sg, sb) = SPAN_COLOR;
        for a in &data.anomalies {
            let from = a.from.clamp(start, end);
            let to = a.to.unwrap_or(end).clamp(start, end).max(from + span / 400);
            let bar = y_lo + (y_hi - y_lo) * 0.035;
            chart
                .draw_series([
                    Rectangle::new(
                        [(from, y_lo), (to, y_hi)],
                        RGBColor(sr, sg, sb).mix(0.06).filled(),
                    ),
                    Rectangle::new([(from, y_lo), (to, bar)], RGBColor(sr, sg, sb).filled()),
                ])
                .map_err(err)?;
        }
        for (i, s) in &visible {
            let (r, g, b) = series_color(*i);
            let color = RGBColor(r, g, b);
            for run in runs(&s.points, data.step_ms) {
                if run.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(run[0], 3, color.filled())))
                        .map_err(err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(run, color.stroke_width(2)))
                        .map_err(err)?;
                }
            }
        }
        // Change events: a thin vertical line across the plot at the event's time, so a jump
        // in a series can be read against "the deploy at 14:02".
        let (er, eg, eb) = EVENT_COLOR;
        for e in data
            .events
            .iter()
            .filter(|e| (start..=end).contains(&e.time_ms))
        {
            chart
                .draw_series(LineSeries::new(
                    [(e.time_ms, y_lo), (e.time_ms, y_hi)],
                    RGBColor(er, eg, eb).stroke_width(1),
                ))
                .map_err(err)?;
        }
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        frame = PlotFrame {
            left: xr.start,
            right: xr.end,
            top: yr.start,
            bottom: yr.end,
            start,
            end,
        };
        root.present().map_err(err)?;
    }
    Ok((svg, frame))
}

/// The point of `series` nearest to `t`, if any.
pub fn nearest_point(series: &RangeSeries, t: TimestampMs) -> Option<(TimestampMs, f64)> {
    let pts = &series.points;
    let i = pts.partition_point(|&(pt, _)| pt < t);
    let candidates = [i.checked_sub(1), Some(i)];
    candidates
        .into_iter()
        .flatten()
        .filter_map(|j| pts.get(j).copied())
        .min_by_key(|&(pt, _)| (pt - t).abs())
}

/// The label set as a legend shows it: `{job="x"}`, or the metric name when there are no labels.
pub fn series_label(s: &RangeSeries) -> String {
    if s.labels.is_empty() {
        // `sum(rate(x[5m]))` has neither: Prometheus' UI writes the empty set as `{}`.
        if s.metric.is_empty() {
            "{}".to_string()
        } else {
            s.metric.clone()
        }
    } else {
        s.labels.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Labels;

    fn data(points: Vec<Vec<(i64, f64)>>) -> ChartData {
        ChartData {
            selector: "m".into(),
            start: 0,
            end: 600_000,
            step_ms: 150_000,
            series: points
                .into_iter()
                .enumerate()
                .map(|(i, p)| RangeSeries {
                    metric: "m".into(),
                    labels: Labels::from_pairs([("i", i.to_string())]),
                    points: p,
                })
                .collect(),
            omitted_series: 0,
            events: Vec::new(),
            band: None,
            anomalies: Vec::new(),
            last_sample: None,
        }
    }

    /// The points of every series line in the SVG, read back from the text. The mesh is drawn
    /// with polylines too, but only series lines are 2 pixels wide.
    fn polyline_points(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline")
            .skip(1)
            .filter(|p| p[..p.find("/>").unwrap()].contains("stroke-width=\"2\""))
            .map(|p| {
                let start = p.find("points=\"").unwrap() + 8;
                let end = start + p[start..].find('"').unwrap();
                p[start..end]
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn frame_maps_times_to_the_pixels_plotters_drew() {
        let d = data(vec![vec![
            (0, 1.0),
            (150_000, 2.0),
            (300_000, 3.0),
            (600_000, 1.5),
        ]]);
        let (svg, frame) = render_svg(&d, &[]).unwrap();
        let lines = polyline_points(&svg);
        assert_eq!(lines.len(), 1, "{svg}");
        let xs: Vec<f64> = lines[0].iter().map(|p| p.0).collect();
        for (x, t) in xs.iter().zip([0, 150_000, 300_000, 600_000]) {
            assert!(
                (frame.x_of(t) - x).abs() <= 1.0,
                "t={t}: drawn at {x}, frame says {}",
                frame.x_of(t)
            );
            // Reading the time back at the drawn pixel lands within one pixel's worth of time.
            let ms_per_px = 600_000.0 / f64::from(frame.right - frame.left);
            assert!((frame.time_at(*x) - t).abs() as f64 <= ms_per_px + 1.0);
        }
        assert!(frame.left > 0 && frame.right < CHART_WIDTH as i32 && frame.top < frame.bottom);
    }

    #[test]
    fn change_events_in_range_are_drawn_at_their_time_and_others_are_not() {
        let mut d = data(vec![vec![(0, 1.0), (600_000, 2.0)]]);
        let event = |t: i64| ChangeEvent {
            time_ms: t,
            node: "orders_etl".into(),
            kind: "deploy".into(),
            detail: "v2".into(),
            labels: Default::default(),
            version: Some("2.0.1".into()),
        };
        d.events = vec![event(450_000), event(900_000)];
        let (svg, frame) = render_svg(&d, &[]).unwrap();
        // Event lines are the 1-pixel polylines in the event colour.
        let lines: Vec<Vec<(f64, f64)>> = svg
            .split("<polyline")
            .skip(1)
            .filter(|p| {
                p[..p.find("/>").unwrap()]
                    .to_lowercase()
                    .contains("#a63603")
            })
            .map(|p| {
                let start = p.find("points=\"").unwrap() + 8;
                let end = start + p[start..].find('"').unwrap();
                p[start..end]
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect();
        assert_eq!(lines.len(), 1, "only the event inside the range: {svg}");
        let (x0, x1) = (lines[0][0].0, lines[0][1].0);
        assert_eq!(x0, x1, "vertical");
        // Plotters floors to whole pixels and strokes on the pixel's edge: within 2 pixels.
        assert!(
            (frame.x_of(450_000) - x0).abs() <= 2.0,
            "{x0} vs {}",
            frame.x_of(450_000)
        );
        assert_eq!(event_title(&d.events[0]), "deploy orders_etl 2.0.1: v2");
    }

    #[test]
    fn a_span_without_a_band_survives_the_trip_to_the_browser() {
        let b = ExpectedBand {
            low: f64::NAN,
            high: f64::NAN,
            from: 1,
            to: None,
        };
        let json = serde_json::to_string(&b).unwrap();
        let back: ExpectedBand = serde_json::from_str(&json).unwrap();
        assert!(
            back.low.is_nan() && back.high.is_nan() && back.from == 1,
            "{json}"
        );
    }

    #[test]
    fn expected_band_and_flagged_span_are_shaded_and_kept_in_view() {
        // The line sits far above its band: the y range must still reach down to the band.
        let mut d = data(vec![vec![(0, 100.0), (300_000, 101.0), (600_000, 100.0)]]);
        d.band = Some(ExpectedBand {
            low: 1.0,
            high: 2.0,
            from: 300_000,
            to: None,
        });
        let all: Vec<&RangeSeries> = d.series.iter().collect();
        let (lo, hi) = value_range(&all, d.band.as_ref());
        assert!(lo <= 1.0 && hi >= 101.0, "{lo}..{hi}");
        let (svg, frame) = render_svg(&d, &[]).unwrap();
        let rects: Vec<&str> = svg
            .split("<rect")
            .skip(1)
            .map(|r| &r[..r.find("/>").unwrap()])
            .collect();
        let band = rects
            .iter()
            .find(|r| r.to_lowercase().contains("#2ca02c"))
            .unwrap_or_else(|| panic!("a green band: {svg}"));
        let span = rects
            .iter()
            .find(|r| r.to_lowercase().contains("#d62728"))
            .unwrap_or_else(|| panic!("a red span: {svg}"));
        let attr = |r: &str, name: &str| -> f64 {
            let k = format!(" {name}=\"");
            let i = r.find(&k).unwrap() + k.len();
            r[i..i + r[i..].find('"').unwrap()].parse().unwrap()
        };
        // The band spans the plot's width; the span starts at 300 s and runs to the end
        // (still open).
        assert!(
            (attr(band, "x") - f64::from(frame.left)).abs() <= 2.0,
            "{band}"
        );
        assert!(
            (attr(span, "x") - frame.x_of(300_000)).abs() <= 2.0,
            "{span}"
        );
        assert!(
            (attr(span, "x") + attr(span, "width") - f64::from(frame.right)).abs() <= 2.0,
            "{span}"
        );
        // A thin band near the bottom: low values are drawn low in the SVG (large y).
        assert!(
            attr(band, "y") > f64::from(frame.top + frame.bottom) / 2.0,
            "{band}"
        );
        assert!(attr(band, "height") < f64::from(frame.bottom - frame.top) / 10.0);
    }

    #[test]
    fn series_get_distinct_colours_and_hidden_ones_are_not_drawn() {
        let d = data(vec![
            vec![(0, 1.0), (150_000, 2.0)],
            vec![(0, 3.0), (150_000, 4.0)],
        ]);
        let (svg, _) = render_svg(&d, &[]).unwrap();
        assert!(svg.contains("#1F77B4") || svg.contains("#1f77b4"), "{svg}");
        assert!(svg.to_lowercase().contains("#ff7f0e"));
        let (svg, _) = render_svg(&d, &[true, false]).unwrap();
        assert_eq!(polyline_points(&svg).len(), 1);
        assert!(!svg.to_lowercase().contains("#1f77b4"));
    }

    #[test]
    fn gaps_and_nan_break_the_line() {
        let pts = vec![
            (0, 1.0),
            (1000, 2.0),
            (2000, f64::NAN),
            (3000, 1.0),
            (4000, 1.0),
            (60_000, 5.0),
            (61_000, 6.0),
        ];
        let r = runs(&pts, 1000);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], vec![(3000, 1.0), (4000, 1.0)]);
    }

    #[test]
    fn nearest_point_picks_the_closer_neighbour() {
        let s = &data(vec![vec![(0, 1.0), (10_000, 2.0), (20_000, 3.0)]]).series[0];
        assert_eq!(nearest_point(s, 4_000), Some((0, 1.0)));
        assert_eq!(nearest_point(s, 6_000), Some((10_000, 2.0)));
        assert_eq!(nearest_point(s, 99_000), Some((20_000, 3.0)));
        assert_eq!(
            nearest_point(
                &RangeSeries {
                    metric: "m".into(),
                    labels: Labels::new(),
                    points: vec![]
                },
                0
            ),
            None
        );
    }

    #[test]
    fn time_ticks_fall_on_round_utc_times() {
        // 17:19:45 to 18:19:45: every 10 minutes from 17:20 (5 minutes would make 12 ticks).
        let start = 1_764_177_585_000;
        let ticks = time_ticks(start, start + 3_600_000, 8);
        assert_eq!(ticks.len(), 6);
        assert!(ticks.iter().all(|t| t % 600_000 == 0));
        // 16 minutes: every 2 minutes, 8 ticks.
        assert_eq!(time_ticks(start, start + 16 * 60_000, 8).len(), 8);
        assert_eq!(crate::timefmt::format_axis(ticks[0], 3_600_000), "17:20");
    }

    #[test]
    fn values_are_abbreviated_readably() {
        assert_eq!(format_value(1250.0), "1250");
        assert_eq!(format_value(12_500.0), "12.5k");
        assert_eq!(format_value(3_200_000.0), "3.2M");
        assert_eq!(format_value(0.00125), "0.0013");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(42.0), "42");
    }
}
