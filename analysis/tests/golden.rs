//! Golden tests for the detectors: labelled synthetic series made here from a seed (daily
//! seasonality plus Gaussian noise, with injected spikes, dips, level shifts and trends), and
//! precision / recall over many seeds asserted above stated floors. A clean seasonal series
//! must give no verdict at all.

use analysis::detect::{
    Context, DetectConfig, Detector, Feedback, LevelShift, Point, SeasonalBaseline, SlowTrend,
    SpikeDip, StreamingDetector, StreamingEnsemble, Window,
};
use analysis::{SignalKind, Verdict};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const STEP: i64 = 900;
const DAYS: i64 = 14;
const N: usize = (DAYS * 86_400 / STEP) as usize;
/// Midnight UTC, so the daily pattern lines up with the detector's slots like real data would.
const T0: i64 = 1_767_225_600;
const NOISE: f64 = 2.0;
const SEEDS: u64 = 20;

#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    Spikes,
    Dips,
    LevelShift,
    Trend,
}

/// A series and the windows that were injected into it.
fn synthetic(seed: u64, fault: Fault) -> (Vec<Point>, Vec<Window>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<f64> = (0..N)
        .map(|i| {
            let hour = (i as f64 * STEP as f64 / 3600.0) % 24.0;
            // Box–Muller: two uniforms to one standard normal.
            let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
            let noise = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            100.0 + 30.0 * (std::f64::consts::TAU * hour / 24.0).sin() + NOISE * noise
        })
        .collect();
    let t = |i: usize| T0 + i as i64 * STEP;
    let mut windows = Vec::new();
    // Faults land in the second week, after a week of history to learn from.
    let second_week = N / 2 + 8..N - 8;
    match fault {
        Fault::None => {}
        Fault::Spikes | Fault::Dips => {
            let sign = if matches!(fault, Fault::Spikes) { 1.0 } else { -1.0 };
            // Further apart than the streaming detector's quiet period (200 points), within
            // which a second deviation must be louder than the first to score fully.
            let at: Vec<usize> = (0..3)
                .map(|k| second_week.start + k * 215 + rng.gen_range(0..40))
                .collect();
            for i in at {
                let len = if matches!(fault, Fault::Dips) { 2 } else { 1 };
                for k in i..i + len {
                    v[k] += sign * rng.gen_range(12.0..20.0) * NOISE;
                }
                windows.push(Window {
                    start: t(i),
                    end: t(i + len - 1),
                });
            }
        }
        Fault::LevelShift => {
            let i = rng.gen_range(N / 2 + 100..N - 100);
            let jump = rng.gen_range(6.0..10.0) * NOISE * if rng.gen() { 1.0 } else { -1.0 };
            for x in &mut v[i..] {
                *x += jump;
            }
            windows.push(Window {
                start: t(i),
                end: t(N - 1),
            });
        }
        Fault::Trend => {
            // A slow drift of 8 to 12 noise sigmas over the two weeks: no single day stands out.
            let total = rng.gen_range(8.0..12.0) * NOISE;
            for (i, x) in v.iter_mut().enumerate() {
                *x += total * i as f64 / N as f64;
            }
            windows.push(Window {
                start: t(0),
                end: t(N - 1),
            });
        }
    }
    let points = v
        .into_iter()
        .enumerate()
        .map(|(i, v)| Point { t: t(i), v })
        .collect();
    (points, windows)
}

fn overlaps(v: &Verdict, w: &Window) -> bool {
    v.start <= w.end + 2 * STEP && w.start <= v.end + 2 * STEP
}

/// (precision, recall, verdicts) of a detector over SEEDS series with the given fault.
fn evaluate(det: &dyn Detector, fault: Fault) -> (f64, f64, usize) {
    let (mut verdicts, mut good, mut injected, mut found) = (0, 0, 0, 0);
    let feedback = Feedback::default();
    let config = DetectConfig::default();
    for seed in 0..SEEDS {
        let (series, windows) = synthetic(seed, fault);
        let ctx = Context {
            kind: SignalKind::Throughput,
            feedback: &feedback,
            config: &config,
            evaluate_from: None,
        };
        let out = det.detect(&series, &ctx);
        verdicts += out.len();
        good += out
            .iter()
            .filter(|v| windows.iter().any(|w| overlaps(v, w)))
            .count();
        injected += windows.len();
        found += windows
            .iter()
            .filter(|w| out.iter().any(|v| overlaps(v, w)))
            .count();
    }
    let precision = if verdicts == 0 {
        1.0
    } else {
        good as f64 / verdicts as f64
    };
    (precision, found as f64 / injected as f64, verdicts)
}

fn assert_floors(det: &dyn Detector, fault: Fault, min_precision: f64, min_recall: f64) {
    let (p, r, n) = evaluate(det, fault);
    eprintln!("{} on {fault:?}: precision {p:.2}, recall {r:.2}, {n} verdicts", det.name());
    assert!(
        p >= min_precision && r >= min_recall,
        "{} on {fault:?}: precision {p:.2} (floor {min_precision}), recall {r:.2} (floor {min_recall})",
        det.name()
    );
}

#[test]
fn seasonal_baseline_finds_spikes_and_dips() {
    assert_floors(&SeasonalBaseline, Fault::Spikes, 0.9, 0.95);
    assert_floors(&SeasonalBaseline, Fault::Dips, 0.9, 0.95);
}

#[test]
fn spike_detector_finds_spikes_and_dips() {
    assert_floors(&SpikeDip::default(), Fault::Spikes, 0.9, 0.95);
    assert_floors(&SpikeDip::default(), Fault::Dips, 0.9, 0.95);
}

#[test]
fn level_shift_detector_finds_shifts() {
    assert_floors(&LevelShift::default(), Fault::LevelShift, 0.9, 0.95);
}

#[test]
fn trend_detector_finds_slow_drifts() {
    assert_floors(&SlowTrend::default(), Fault::Trend, 0.9, 0.9);
}

#[test]
fn no_verdicts_on_a_clean_seasonal_series() {
    let detectors: [&dyn Detector; 4] = [
        &SeasonalBaseline,
        &SpikeDip::default(),
        &LevelShift::default(),
        &SlowTrend::default(),
    ];
    for det in detectors {
        let (_, _, n) = evaluate(det, Fault::None);
        assert_eq!(n, 0, "{} flagged a clean series", det.name());
    }
}

#[test]
fn spike_and_level_shift_detectors_leave_each_other_alone() {
    // A spike is not a level shift and a level shift is not a run of spikes: each detector
    // must stay quiet on the other's fault, or the jobs would open two anomalies for one.
    // (Precision, not silence: a 5-sigma noise point elsewhere is fair game for the spike
    // detector.)
    assert_eq!(evaluate(&LevelShift::default(), Fault::Spikes).2, 0);
    let feedback = Feedback::default();
    let config = DetectConfig::default();
    for seed in 0..SEEDS {
        let (series, windows) = synthetic(seed, Fault::LevelShift);
        let ctx = Context {
            kind: SignalKind::Throughput,
            feedback: &feedback,
            config: &config,
            evaluate_from: None,
        };
        let shift = windows[0].start;
        for v in SpikeDip::default().detect(&series, &ctx) {
            assert!(
                v.end < shift - 2 * STEP || v.start > shift + 24 * STEP,
                "seed {seed}: spike verdict at the level shift: {}",
                v.sentence
            );
        }
    }
    assert_eq!(evaluate(&SlowTrend::default(), Fault::LevelShift).2, 0);
}

#[test]
fn streaming_ensemble_scores_injected_faults_above_the_rest() {
    // The NAB harness's detector on the same series, at one threshold (0.4) for all of them as
    // NAB uses: injected faults reach it within their window (level shifts within a day of
    // their start), and little else does once the learning period is over (three days: two to
    // see the daily pattern, one to settle).
    //
    // Floors are lower than the batch detectors' on purpose, and measured, not wished: the
    // ensemble keeps the z it saw before the daily pattern was found in its tail fit, which
    // makes it quieter on these clean series (47/60 spikes, 47/60 dips found) but is worth
    // +7 points on the NAB dev subset (74.6 against 67.2 when that history is dropped).
    let learned = T0 + 3 * 86_400;
    const THRESH: f64 = 0.4;
    let mut false_alarms = 0;
    for fault in [Fault::Spikes, Fault::Dips, Fault::LevelShift, Fault::None] {
        let (mut hits, mut injected) = (0, 0);
        for seed in 0..SEEDS {
            let (series, windows) = synthetic(seed, fault);
            let mut det = StreamingEnsemble::default();
            let scores: Vec<f64> = series.iter().map(|p| det.observe(p.t, p.v)).collect();
            for w in &windows {
                injected += 1;
                let end = w.end.min(w.start + 86_400);
                if series
                    .iter()
                    .zip(&scores)
                    .any(|(p, s)| p.t >= w.start && p.t <= end && *s >= THRESH)
                {
                    hits += 1;
                }
            }
            false_alarms += series
                .iter()
                .zip(&scores)
                .filter(|(p, s)| {
                    **s >= THRESH
                        && p.t >= learned
                        && !windows
                            .iter()
                            .any(|w| p.t >= w.start - 2 * STEP && p.t <= w.end + 2 * STEP)
                })
                .count();
        }
        eprintln!("streaming on {fault:?}: {hits}/{injected} found");
        let floor = match fault {
            Fault::LevelShift => 0.95,
            _ => 0.75,
        };
        assert!(
            hits as f64 >= floor * injected as f64,
            "{fault:?}: {hits}/{injected} found, floor {floor}"
        );
    }
    // 80 series x 11 days after learning = 84,480 points.
    eprintln!("{false_alarms} false alarms");
    assert!(false_alarms <= 8, "{false_alarms} false alarms");
}

fn spike_verdicts(series: &[Point], feedback: &Feedback) -> Vec<Verdict> {
    let config = DetectConfig::default();
    let ctx = Context {
        kind: SignalKind::Throughput,
        feedback,
        config: &config,
        evaluate_from: None,
    };
    SpikeDip::default().detect(series, &ctx)
}

#[test]
fn false_alarms_join_the_baseline_and_lower_later_scores() {
    let (series, windows) = synthetic(7, Fault::Spikes);
    let mut feedback = Feedback::default();
    let before = spike_verdicts(&series, &feedback);
    assert_eq!(before.len(), windows.len());
    for v in &before {
        feedback.mark_false_alarm(v);
    }
    // The marked windows are normal now.
    assert!(spike_verdicts(&series, &feedback).is_empty());
    // And the band of this series is wider: new spikes of the same size score lower.
    let (other, _) = synthetic(8, Fault::Spikes);
    let fresh = spike_verdicts(&other, &Feedback::default());
    let tuned = spike_verdicts(&other, &feedback);
    assert_eq!(fresh.len(), tuned.len());
    for (f, t) in fresh.iter().zip(&tuned) {
        assert!(t.score <= f.score, "{} > {}", t.score, f.score);
        assert!(t.expected_high - t.expected_low > f.expected_high - f.expected_low);
    }
}

#[test]
fn an_expected_window_trains_the_baseline() {
    let (shifted, w) = synthetic(3, Fault::LevelShift);
    let mut feedback = Feedback::default();
    let config = DetectConfig::default();
    let run = |feedback: &Feedback| {
        let ctx = Context {
            kind: SignalKind::Throughput,
            feedback,
            config: &config,
            evaluate_from: None,
        };
        LevelShift::default().detect(&shifted, &ctx)
    };
    assert_eq!(run(&feedback).len(), 1);
    feedback.mark_expected(w[0]);
    assert!(run(&feedback).is_empty());
}

#[test]
fn verdict_sentence_names_value_band_slot_and_start() {
    let (series, _) = synthetic(1, Fault::Spikes);
    let v = &spike_verdicts(&series, &Feedback::default())[0];
    // "throughput 139/s, expected 101–126/s for Thu 13:00; started 13:15 (spike)"
    assert!(v.sentence.starts_with("throughput "), "{}", v.sentence);
    assert!(v.sentence.contains(", expected "), "{}", v.sentence);
    assert!(v.sentence.contains("; started "), "{}", v.sentence);
    assert!(v.sentence.ends_with("(spike)"), "{}", v.sentence);
    assert!(v.expected_low < v.expected_high && v.observed > v.expected_high);
    assert!((0.0..=1.0).contains(&v.score));
}

