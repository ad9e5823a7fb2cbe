//! Every drift statistic against scipy 1.17.1 and Evidently 0.7.23 on the 11 cases of
//! `tests/fixtures/drift/` (copied from the shared fixtures; README.md there gives the formulas
//! and the tolerances used below).

use analysis::drift::binning::{self, BinningRule, Bins};
use analysis::drift::{
    compare, kolmogorov, stats, ColumnProfile, DriftOptions, Method, StatTest, ValueCounts,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drift")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn column(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines().skip(1).map(str::to_owned).collect()
}

fn numbers(file: &str) -> Vec<f64> {
    column(file)
        .iter()
        .map(|s| s.parse::<f64>().unwrap())
        .collect()
}

/// A number from the fixture; "inf", "-inf" and "nan" are written as strings.
fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not a number: {s}")),
        other => other
            .as_f64()
            .unwrap_or_else(|| panic!("not a number: {other}")),
    }
}

/// Collects mismatches so one run reports all of them.
#[derive(Default)]
struct Checker {
    failures: Vec<String>,
    checked: usize,
}

impl Checker {
    fn close(&mut self, what: &str, got: f64, want: &Value, rel: f64, abs: f64) {
        self.checked += 1;
        let want = num(want);
        let ok = if want.is_infinite() || got.is_infinite() || want.is_nan() {
            got == want || (got.is_nan() && want.is_nan())
        } else {
            (got - want).abs() <= abs.max(rel * want.abs())
        };
        if !ok {
            self.failures
                .push(format!("{what}: got {got:e}, want {want:e}"));
        }
    }

    /// Pure arithmetic on sorted data: 1e-9 relative, 1e-12 absolute floor.
    fn arith(&mut self, what: &str, got: f64, want: &Value) {
        self.close(what, got, want, 1e-9, 1e-12);
    }

    /// p-values from the same algorithm: 1e-7 relative.
    fn pvalue(&mut self, what: &str, got: f64, want: &Value) {
        self.close(what, got, want, 1e-7, 1e-300);
    }

    fn equal<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        self.checked += 1;
        if got != want {
            self.failures
                .push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
}

/// Tolerance for a score, by test: CvM's p-value carries the 1e-7 truncation of its series.
fn score_check(c: &mut Checker, what: &str, test: StatTest, got: f64, want: &Value) {
    match test {
        StatTest::CramerVonMises => c.close(what, got, want, 1e-6, 1e-9),
        t if t.is_p_value() => c.pvalue(what, got, want),
        _ => c.arith(what, got, want),
    }
}

#[test]
fn every_statistic_and_verdict_matches_scipy_and_evidently() {
    let exp = expected();
    let cases = exp["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 11, "the fixture has 11 cases");
    let mut c = Checker::default();
    for (case, e) in cases {
        let numeric = e["kind"] == "numeric";
        let ref_file = e["reference"]["file"].as_str().unwrap();
        let cur_file = e["current"]["file"].as_str().unwrap();
        let (rp, cp, bins) = if numeric {
            let (r, cu) = (numbers(ref_file), numbers(cur_file));
            let (rv, cv) = (ValueCounts::from_values(&r), ValueCounts::from_values(&cu));
            check_numeric(&mut c, case, e, &rv, &cv);
            (
                ColumnProfile::numeric(&r),
                ColumnProfile::numeric(&cu),
                Bins::numeric(&rv, &cv),
            )
        } else {
            let (r, cu) = (column(ref_file), column(cur_file));
            let counts = |v: &[String]| {
                let mut m = BTreeMap::<String, u64>::new();
                for s in v {
                    *m.entry(s.clone()).or_default() += 1;
                }
                m
            };
            for (side, v) in [("reference", &r), ("current", &cu)] {
                let want: BTreeMap<String, u64> =
                    serde_json::from_value(e[side]["counts"].clone()).unwrap();
                c.equal(&format!("{case}: {side} counts"), counts(v), want);
            }
            let (rc, cc) = binning::per_value_counts(&counts(&r), &counts(&cu));
            check_tables(&mut c, case, e, &rc, &cc);
            (
                ColumnProfile::categorical(r.iter().map(String::as_str)),
                ColumnProfile::categorical(cu.iter().map(String::as_str)),
                Bins::from_counts(rc, cc),
            )
        };
        check_bins(&mut c, case, e, &bins);
        check_evidently(&mut c, case, e, &rp, &cp);
    }
    assert!(
        c.failures.is_empty(),
        "{} of {} checks failed:\n{}",
        c.failures.len(),
        c.checked,
        c.failures.join("\n")
    );
    // 11 cases x dozens of values: a loop that silently skipped cases would check far fewer.
    assert!(c.checked > 400, "only {} checks ran", c.checked);
}

fn check_numeric(c: &mut Checker, case: &str, e: &Value, r: &ValueCounts, cu: &ValueCounts) {
    for (side, s) in [("reference", r), ("current", cu)] {
        c.equal(
            &format!("{case}: {side} n"),
            s.n(),
            e[side]["n"].as_u64().unwrap(),
        );
        c.equal(
            &format!("{case}: {side} n_unique"),
            s.distinct() as u64,
            e[side]["n_unique"].as_u64().unwrap(),
        );
        c.arith(&format!("{case}: {side} mean"), s.mean(), &e[side]["mean"]);
        c.arith(
            &format!("{case}: {side} std"),
            s.std_population(),
            &e[side]["std_population"],
        );
    }
    let sc = &e["scipy"];
    let ks = &sc["ks_2samp"];
    let d = stats::ks_statistic(r, cu);
    c.arith(&format!("{case}: ks D"), d, &ks["statistic"]);
    let exact = ks["method_used"] == "exact";
    c.equal(
        &format!("{case}: ks method"),
        kolmogorov::uses_exact(r.n(), cu.n()),
        exact,
    );
    if exact {
        c.pvalue(
            &format!("{case}: ks exact p"),
            kolmogorov::exact_two_sample_sf(r.n(), cu.n(), d),
            &ks["pvalue"],
        );
    }
    c.pvalue(
        &format!("{case}: ks asymptotic p"),
        kolmogorov::asymptotic_two_sample_sf(r.n(), cu.n(), d),
        &ks["pvalue_asymp"],
    );
    c.pvalue(
        &format!("{case}: ks Kolmogorov-limit p"),
        kolmogorov::kolmogorov_limit_sf(num(&ks["en"]).sqrt() * d),
        &ks["pvalue_kolmogorov_limit"],
    );
    c.pvalue(
        &format!("{case}: ks p (auto)"),
        kolmogorov::two_sample_p_value(r.n(), cu.n(), d),
        &ks["pvalue"],
    );

    c.arith(
        &format!("{case}: wasserstein"),
        stats::wasserstein(r, cu),
        &sc["wasserstein_distance"],
    );
    c.arith(
        &format!("{case}: wasserstein normed"),
        stats::wasserstein_normed(r, cu),
        &e["formulas"]["wasserstein_normed"],
    );

    let mw = stats::mann_whitney(r, cu);
    let w = &sc["mannwhitneyu"];
    c.arith(&format!("{case}: U1"), mw.u1, &w["U1_reference"]);
    c.arith(&format!("{case}: U2"), mw.u2, &w["U2_current"]);
    c.pvalue(
        &format!("{case}: mwu two-sided"),
        mw.p_two_sided,
        &w["pvalue_two_sided"],
    );
    c.pvalue(&format!("{case}: mwu less"), mw.p_less, &w["pvalue_less"]);
    c.pvalue(
        &format!("{case}: mwu greater"),
        mw.p_greater,
        &w["pvalue_greater"],
    );

    let ad = stats::anderson_darling(r, cu);
    let a = &sc["anderson_ksamp"];
    c.arith(
        &format!("{case}: AD statistic"),
        ad.statistic,
        &a["statistic"],
    );
    c.pvalue(&format!("{case}: AD p"), ad.p_value, &a["pvalue"]);
    for (i, want) in a["critical_values"].as_array().unwrap().iter().enumerate() {
        c.arith(
            &format!("{case}: AD critical {i}"),
            ad.critical_values[i],
            want,
        );
    }

    let (t, p) = stats::cramer_von_mises(r, cu);
    c.arith(
        &format!("{case}: CvM T"),
        t,
        &sc["cramervonmises_2samp"]["statistic"],
    );
    c.close(
        &format!("{case}: CvM p"),
        p,
        &sc["cramervonmises_2samp"]["pvalue"],
        1e-6,
        1e-9,
    );

    if sc.get("chi2_contingency").is_some() {
        let (rc, cc) = binning::per_value_counts_numeric(r, cu);
        check_tables(c, case, e, &rc, &cc);
    }
}

/// Chi-square (contingency and Evidently's goodness of fit) and the z-test on count tables.
fn check_tables(c: &mut Checker, case: &str, e: &Value, rc: &[u64], cc: &[u64]) {
    let sc = &e["scipy"];
    let ch = &sc["chi2_contingency"];
    let table: Vec<Vec<u64>> = serde_json::from_value(ch["table"].clone()).unwrap();
    c.equal(
        &format!("{case}: contingency table"),
        vec![rc.to_vec(), cc.to_vec()],
        table,
    );
    let (stat, p, dof) = stats::chi2_contingency(rc, cc);
    c.arith(
        &format!("{case}: chi2 contingency statistic"),
        stat,
        &ch["statistic"],
    );
    c.pvalue(&format!("{case}: chi2 contingency p"), p, &ch["pvalue"]);
    c.equal(
        &format!("{case}: chi2 dof"),
        dof as u64,
        ch["dof"].as_u64().unwrap(),
    );
    let g = &sc["chisquare_goodness_of_fit_evidently_style"];
    let (stat, p) = stats::chisquare_goodness_of_fit(rc, cc);
    c.arith(
        &format!("{case}: chisquare GOF statistic"),
        stat,
        &g["statistic"],
    );
    c.pvalue(&format!("{case}: chisquare GOF p"), p, &g["pvalue"]);
    if let Some(z) = sc.get("two_proportion_z_test") {
        let (zs, p) = stats::two_proportion_z(rc, cc);
        c.arith(&format!("{case}: z"), zs, &z["z"]);
        c.pvalue(&format!("{case}: z p"), p, &z["pvalue_two_sided"]);
    }
}

fn check_bins(c: &mut Checker, case: &str, e: &Value, bins: &Bins) {
    let b = &e["evidently_binning"];
    let want_rule = match b["rule"].as_str().unwrap() {
        "sturges_equal_width" => BinningRule::SturgesEqualWidth,
        "one_bin_per_distinct_value" => BinningRule::OneBinPerDistinctValue,
        other => panic!("{case}: unknown rule {other}"),
    };
    c.equal(&format!("{case}: binning rule"), bins.rule, want_rule);
    c.equal(
        &format!("{case}: n_bins"),
        bins.reference.len() as u64,
        b["n_bins"].as_u64().unwrap(),
    );
    if let Some(edges) = &bins.edges {
        let want: Vec<f64> = serde_json::from_value(b["bin_edges"].clone()).unwrap();
        // Bit for bit: a one-ulp difference moves the values that lie on an edge.
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        c.equal(
            &format!("{case}: bin edges (bits)"),
            bits(edges),
            bits(&want),
        );
    }
    let whole = |v: &[f64]| v.iter().map(|x| *x as u64).collect::<Vec<_>>();
    let want_r: Vec<u64> = serde_json::from_value(b["reference_counts"].clone()).unwrap();
    let want_c: Vec<u64> = serde_json::from_value(b["current_counts"].clone()).unwrap();
    c.equal(
        &format!("{case}: reference bin counts"),
        whole(&bins.reference),
        want_r,
    );
    c.equal(
        &format!("{case}: current bin counts"),
        whole(&bins.current),
        want_c,
    );
    let (rp, cp) = (bins.reference_proportions(), bins.current_proportions());
    for (side, p) in [("reference", &rp), ("current", &cp)] {
        let want = &b[format!("zero_fill_{side}")];
        match binning::zero_fill_value(p) {
            None => c.equal(&format!("{case}: {side} zero fill"), want.is_null(), true),
            Some(f) => c.arith(&format!("{case}: {side} zero fill"), f, want),
        }
        let filled = binning::zero_filled(p);
        for (i, w) in b[format!("{side}_proportions_zero_filled")]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            c.arith(
                &format!("{case}: {side} zero-filled proportion {i}"),
                filled[i],
                w,
            );
        }
    }
    let f = &e["formulas"];
    c.arith(
        &format!("{case}: psi"),
        bins.distance(StatTest::Psi),
        &f["psi"],
    );
    c.arith(
        &format!("{case}: jensenshannon"),
        bins.distance(StatTest::JensenShannon),
        &f["jensenshannon"],
    );
    c.arith(
        &format!("{case}: kl_div"),
        bins.distance(StatTest::KlDiv),
        &f["kl_div"],
    );
}

/// Evidently's registered tests called through `compare`, and the Report's verdicts.
fn check_evidently(c: &mut Checker, case: &str, e: &Value, r: &ColumnProfile, cu: &ColumnProfile) {
    let ev = &e["evidently"];
    for (name, want) in ev["stattests"].as_object().unwrap() {
        let options = if name == "default" {
            DriftOptions::default()
        } else {
            DriftOptions {
                test: Some(
                    StatTest::from_name(name).unwrap_or_else(|| panic!("{case}: test {name}")),
                ),
                threshold: None,
            }
        };
        let got = match compare(r, cu, &options) {
            Ok(g) => g,
            Err(err) => {
                c.failures.push(format!("{case}: {name}: {err}"));
                continue;
            }
        };
        let what = format!("{case}: evidently {name}");
        if name == "default" {
            c.equal(
                &format!("{what} chosen test"),
                got.test.name(),
                want["stattest"].as_str().unwrap(),
            );
        }
        c.equal(
            &format!("{what} display name"),
            got.test.display_name(),
            want["display_name"].as_str().unwrap(),
        );
        c.equal(&format!("{what} method"), got.method, Method::Exact);
        score_check(
            c,
            &format!("{what} score"),
            got.test,
            got.score,
            &want["drift_score"],
        );
        c.arith(
            &format!("{what} threshold"),
            got.threshold,
            &want["threshold"],
        );
        c.equal(
            &format!("{what} drift detected"),
            got.drifted,
            want["drift_detected"].as_bool().unwrap(),
        );
    }
    let report = &ev["report"];
    let preset = &report["DataDriftPreset"]["ValueDrift"];
    let got = compare(r, cu, &DriftOptions::default()).unwrap();
    c.equal(
        &format!("{case}: report default method"),
        got.test.display_name(),
        preset["method"].as_str().unwrap(),
    );
    score_check(
        c,
        &format!("{case}: report default value"),
        got.test,
        got.score,
        &preset["value"],
    );
    c.equal(
        &format!("{case}: report default status"),
        got.drifted,
        preset["test_status"] == "FAIL",
    );
    let drifted_share = if got.drifted { 1.0 } else { 0.0 };
    c.arith(
        &format!("{case}: report drifted share"),
        drifted_share,
        &report["DataDriftPreset"]["DriftedColumnsCount"]["share"],
    );
    for (name, want) in report["ValueDrift"].as_object().unwrap() {
        let test = StatTest::from_name(name).unwrap();
        let got = compare(
            r,
            cu,
            &DriftOptions {
                test: Some(test),
                threshold: None,
            },
        )
        .unwrap();
        score_check(
            c,
            &format!("{case}: report {name} value"),
            test,
            got.score,
            &want["value"],
        );
        c.equal(
            &format!("{case}: report {name} status"),
            got.drifted,
            want["test_status"] == "FAIL",
        );
    }
}
