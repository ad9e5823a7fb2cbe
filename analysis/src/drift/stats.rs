//! Exact two-sample statistics on [`ValueCounts`], written to give scipy 1.17's numbers (the
//! formulas are in `tests/fixtures/drift/README.md`; references are the reference sample `a`,
//! the current sample `b`).

use super::sample::{pooled, ValueCounts};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::gamma::ln_gamma;

/// Two-sample KS statistic: the largest gap between the two right-continuous ECDFs, taken at
/// every pooled value.
pub fn ks_statistic(a: &ValueCounts, b: &ValueCounts) -> f64 {
    let (na, nb) = (a.n() as f64, b.n() as f64);
    pooled(a, b)
        .iter()
        .map(|p| (p.cum_a as f64 / na - p.cum_b as f64 / nb).abs())
        .fold(0.0, f64::max)
}

/// Wasserstein-1 distance: the area between the two ECDFs (scipy `wasserstein_distance`).
pub fn wasserstein(a: &ValueCounts, b: &ValueCounts) -> f64 {
    let (na, nb) = (a.n() as f64, b.n() as f64);
    let pool = pooled(a, b);
    pool.windows(2)
        .map(|w| {
            (w[0].cum_a as f64 / na - w[0].cum_b as f64 / nb).abs() * (w[1].value - w[0].value)
        })
        .sum()
}

/// Evidently's normed Wasserstein: W1 / max(population std of the reference, 0.001).
pub fn wasserstein_normed(a: &ValueCounts, b: &ValueCounts) -> f64 {
    wasserstein(a, b) / a.std_population().max(0.001)
}

/// Mann–Whitney U with scipy's tie-corrected normal approximation (continuity 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the reference sample.
    pub u1: f64,
    /// U of the current sample, n1 n2 - U1.
    pub u2: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
    /// p-value for "reference is stochastically less" (what Evidently's `mannw` reports).
    pub p_less: f64,
    /// p-value for "reference is stochastically greater".
    pub p_greater: f64,
}

/// Mann–Whitney U on the pooled average ranks.
pub fn mann_whitney(a: &ValueCounts, b: &ValueCounts) -> MannWhitney {
    let (n1, n2) = (a.n() as f64, b.n() as f64);
    let n = n1 + n2;
    let mut below = 0u64;
    let mut r1 = 0.0;
    let mut tie_term = 0.0;
    for p in pooled(a, b) {
        let t = (p.count_a + p.count_b) as f64;
        let avg_rank = below as f64 + (t + 1.0) / 2.0;
        r1 += p.count_a as f64 * avg_rank;
        tie_term += t * t * t - t;
        below += p.count_a + p.count_b;
    }
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let mu = n1 * n2 / 2.0;
    let sigma = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    let sf = |u: f64| std_normal().sf((u - mu - 0.5) / sigma);
    MannWhitney {
        u1,
        u2,
        p_two_sided: (2.0 * sf(u1.max(u2))).min(1.0),
        p_less: sf(u2).min(1.0),
        p_greater: sf(u1).min(1.0),
    }
}

/// k-sample Anderson–Darling (k = 2, midrank variant) as scipy's `anderson_ksamp`.
#[derive(Debug, Clone, PartialEq)]
pub struct AndersonDarling {
    /// The normalised statistic A2 (can be negative).
    pub statistic: f64,
    /// Interpolated p-value, clipped to [0.001, 0.25].
    pub p_value: f64,
    /// Critical values at the significance levels [`AD_SIGNIFICANCE`].
    pub critical_values: [f64; 7],
}

/// Significance levels of the Anderson–Darling critical values.
pub const AD_SIGNIFICANCE: [f64; 7] = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];

/// Anderson–Darling k-sample test for two samples.
pub fn anderson_darling(a: &ValueCounts, b: &ValueCounts) -> AndersonDarling {
    let k = 2.0;
    let n_i = [a.n() as f64, b.n() as f64];
    let n = n_i[0] + n_i[1];
    let pool = pooled(a, b);
    let mut inner = [0.0f64; 2];
    let mut left = 0u64; // pooled values < z
    for p in &pool {
        let l = (p.count_a + p.count_b) as f64;
        let bj = left as f64 + l / 2.0;
        let denom = bj * (n - bj) - n * l / 4.0;
        for (side, (f, cum)) in [(p.count_a, p.cum_a), (p.count_b, p.cum_b)]
            .into_iter()
            .enumerate()
        {
            let m = cum as f64 - f as f64 / 2.0;
            let diff = n * m - bj * n_i[side];
            inner[side] += l / n * diff * diff / denom;
        }
        left += p.count_a + p.count_b;
    }
    let a2akn = (inner[0] / n_i[0] + inner[1] / n_i[1]) * (n - 1.0) / n;

    let h_big = 1.0 / n_i[0] + 1.0 / n_i[1];
    // hs_t = sum_{s=0}^{t} 1/(N-1-s), for t = 0 .. N-3 (1/(N-1), ..., 1/2 cumulated).
    let n_int = a.n() + b.n();
    let mut acc = 0.0;
    let mut g = 0.0;
    for (t, v) in (2..n_int).rev().enumerate() {
        acc += 1.0 / v as f64;
        g += acc / (t as f64 + 2.0);
    }
    let h = acc + 1.0;
    let aa = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * h_big;
    let bb = (2.0 * g - 4.0) * k * k + 8.0 * h * k + (2.0 * g - 14.0 * h - 4.0) * h_big - 8.0 * h
        + 4.0 * g
        - 6.0;
    let cc = (6.0 * h + 2.0 * g - 2.0) * k * k
        + (4.0 * h - 4.0 * g + 6.0) * k
        + (2.0 * h - 6.0) * h_big
        + 4.0 * h;
    let dd = (2.0 * h + 6.0) * k * k - 4.0 * h * k;
    let sigmasq = (aa * n * n * n + bb * n * n + cc * n + dd) / ((n - 1.0) * (n - 2.0) * (n - 3.0));
    let m = k - 1.0;
    let statistic = (a2akn - m) / sigmasq.sqrt();

    const B0: [f64; 7] = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
    const B1: [f64; 7] = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
    const B2: [f64; 7] = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];
    let mut crit = [0.0; 7];
    for i in 0..7 {
        crit[i] = B0[i] + B1[i] / m.sqrt() + B2[i] / m;
    }
    let min_crit = crit.iter().copied().fold(f64::INFINITY, f64::min);
    let max_crit = crit.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let p_value = if statistic < min_crit {
        0.25
    } else if statistic > max_crit {
        0.001
    } else {
        let ys = AD_SIGNIFICANCE.map(f64::ln);
        let [c2, c1, c0] = quadratic_least_squares(&crit, &ys);
        (c2 * statistic * statistic + c1 * statistic + c0).exp()
    };
    AndersonDarling {
        statistic,
        p_value,
        critical_values: crit,
    }
}

/// Least-squares fit y ~ c2 x^2 + c1 x + c0 through the normal equations (3x3, well scaled here).
fn quadratic_least_squares(xs: &[f64], ys: &[f64]) -> [f64; 3] {
    let s: Vec<f64> = (0..5).map(|e| xs.iter().map(|x| x.powi(e)).sum()).collect();
    let t: Vec<f64> = (0..3)
        .map(|e| xs.iter().zip(ys).map(|(x, y)| y * x.powi(e)).sum())
        .collect();
    let mut m = [
        [s[4], s[3], s[2], t[2]],
        [s[3], s[2], s[1], t[1]],
        [s[2], s[1], s[0], t[0]],
    ];
    for col in 0..3 {
        let piv = (col..3)
            .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
            .expect("non-empty range");
        m.swap(col, piv);
        let pivot_row = m[col];
        for (row, r) in m.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / pivot_row[col];
                for (x, p) in r.iter_mut().zip(pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    [m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]]
}

/// Two-sample Cramér–von Mises statistic T and its asymptotic p-value (scipy
/// `cramervonmises_2samp`, which uses the asymptotic form unless both samples have <= 20 values).
pub fn cramer_von_mises(a: &ValueCounts, b: &ValueCounts) -> (f64, f64) {
    let (nx, ny) = (a.n() as f64, b.n() as f64);
    let mut below = 0u64; // pooled values < current group
    let (mut ia, mut ib) = (0u64, 0u64); // values of each sample already passed
    let (mut sum_a, mut sum_b) = (0.0f64, 0.0f64);
    for p in pooled(a, b) {
        let t = p.count_a + p.count_b;
        let rank = below as f64 + (t as f64 + 1.0) / 2.0;
        // sum over this group's items of (rank - index)^2, index running ia+1 ..= ia+count.
        sum_a += sum_sq_offsets(rank - ia as f64, p.count_a);
        sum_b += sum_sq_offsets(rank - ib as f64, p.count_b);
        ia += p.count_a;
        ib += p.count_b;
        below += t;
    }
    let u = nx * sum_a + ny * sum_b;
    let k = nx * ny;
    let n = nx + ny;
    let t = u / (k * n) - (4.0 * k - 1.0) / (6.0 * n);
    let et = (1.0 + 1.0 / n) / 6.0;
    let vt =
        (n + 1.0) * (4.0 * k * n - 3.0 * (nx * nx + ny * ny) - 2.0 * k) / (45.0 * n * n * 4.0 * k);
    let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
    let p = if tn < 0.003 {
        1.0
    } else {
        (1.0 - cvm_limit_cdf(tn)).max(0.0)
    };
    (t, p)
}

/// sum_{m=1}^{count} (c - m)^2, term by term while small (to add in the same order as scipy),
/// in closed form for large tie groups.
fn sum_sq_offsets(c: f64, count: u64) -> f64 {
    if count <= 64 {
        (1..=count).map(|m| (c - m as f64) * (c - m as f64)).sum()
    } else {
        let k = count as f64;
        k * c * c - c * k * (k + 1.0) + k * (k + 1.0) * (2.0 * k + 1.0) / 6.0
    }
}

/// The limiting CDF of the Cramér–von Mises statistic (Csörgő & Faraway), summed until a term
/// falls below 1e-7 as scipy does.
fn cvm_limit_cdf(x: f64) -> f64 {
    use std::f64::consts::PI;
    let mut total = 0.0;
    for k in 0u32..1000 {
        let kf = f64::from(k);
        let u = (ln_gamma(kf + 0.5) - ln_gamma(kf + 1.0)).exp() / (PI.powf(1.5) * x.sqrt());
        let y = 4.0 * kf + 1.0;
        let q = y * y / (16.0 * x);
        let term = u * y.sqrt() * (-q).exp() * bessel_k(0.25, q);
        total += term;
        if term.abs() < 1e-7 {
            break;
        }
    }
    total
}

/// Modified Bessel function of the second kind, K_nu(x) = int_0^inf exp(-x cosh t) cosh(nu t) dt,
/// by the trapezoid rule with step 0.01 (the integrand is smooth and decays doubly
/// exponentially, so this is accurate far below the 1e-7 the CvM series needs). statrs has no
/// Bessel functions.
fn bessel_k(nu: f64, x: f64) -> f64 {
    let h = 0.01;
    let mut total = 0.5 * (-x).exp();
    let mut t: f64 = 0.0;
    loop {
        t += h;
        let v = (-x * t.cosh()).exp() * (nu * t).cosh();
        total += v;
        if v < 1e-300 || (v < 1e-18 * total && t > 1.0) {
            break;
        }
    }
    total * h
}

/// Evidently's `chisquare`: goodness of fit of the current counts against the reference
/// proportions scaled to the current size, over the union of values. Returns (statistic, p).
/// A value that is new in current gives +inf and p = 0.
pub fn chisquare_goodness_of_fit(reference: &[u64], current: &[u64]) -> (f64, f64) {
    let n_ref: u64 = reference.iter().sum();
    let n_cur: u64 = current.iter().sum();
    let scale = n_cur as f64 / n_ref as f64;
    let mut stat = 0.0;
    for (&r, &c) in reference.iter().zip(current) {
        let expected = r as f64 * scale;
        if expected == 0.0 {
            if c > 0 {
                stat = f64::INFINITY;
            }
            continue;
        }
        let d = c as f64 - expected;
        stat += d * d / expected;
    }
    (stat, chi2_sf(stat, reference.len().saturating_sub(1)))
}

/// scipy's `chi2_contingency` on the 2 x K table (reference row, current row), with Yates'
/// correction only when dof = 1. Returns (statistic, p, dof).
pub fn chi2_contingency(reference: &[u64], current: &[u64]) -> (f64, f64, usize) {
    let rows = [
        reference.iter().sum::<u64>() as f64,
        current.iter().sum::<u64>() as f64,
    ];
    let total = rows[0] + rows[1];
    let dof = reference.len().saturating_sub(1);
    let mut stat = 0.0;
    for (i, row) in [reference, current].into_iter().enumerate() {
        for (j, &o) in row.iter().enumerate() {
            let col = (reference[j] + current[j]) as f64;
            let e = rows[i] * col / total;
            let mut diff = (o as f64 - e).abs();
            if dof == 1 {
                diff = (diff - 0.5).max(0.0);
            }
            stat += diff * diff / e;
        }
    }
    (stat, chi2_sf(stat, dof), dof)
}

/// Evidently's two-proportion z-test over a column with at most two values: the indicator is 0
/// for the first value (in sorted order) and 1 for the second. Returns (z, two-sided p); p = 1
/// when both samples hold one and the same value.
pub fn two_proportion_z(reference: &[u64], current: &[u64]) -> (f64, f64) {
    let n1: u64 = reference.iter().sum();
    let n2: u64 = current.iter().sum();
    let ones = |counts: &[u64]| counts.iter().skip(1).sum::<u64>() as f64;
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let p1 = ones(reference) / n1f;
    let p2 = ones(current) / n2f;
    let pooled = (n1f * p1 + n2f * p2) / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return (0.0, 1.0);
    }
    let z = (p1 - p2) / se;
    (z, 2.0 * std_normal().sf(z.abs()))
}

/// Upper tail of the chi-square distribution; +inf gives 0.
pub fn chi2_sf(x: f64, dof: usize) -> f64 {
    if x.is_infinite() {
        return 0.0;
    }
    if dof == 0 {
        return 1.0;
    }
    ChiSquared::new(dof as f64).expect("dof >= 1").sf(x)
}

fn std_normal() -> Normal {
    Normal::standard()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_and_wasserstein_of_a_shift_by_one_step() {
        let a = ValueCounts::from_values(&[0.0, 1.0, 2.0, 3.0]);
        let b = ValueCounts::from_values(&[1.0, 2.0, 3.0, 4.0]);
        assert!((ks_statistic(&a, &b) - 0.25).abs() < 1e-15);
        assert!((wasserstein(&a, &b) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn closed_form_tie_sum_equals_the_loop() {
        let looped: f64 = (1..=1000u64).map(|m| (512.5 - m as f64).powi(2)).sum();
        assert!((sum_sq_offsets(512.5, 1000) - looped).abs() < 1e-6 * looped);
    }

    #[test]
    fn bessel_k_half_has_its_closed_form() {
        // K_{1/2}(x) = sqrt(pi / (2x)) e^{-x}.
        for x in [0.1, 1.0, 5.0] {
            let want = (std::f64::consts::PI / (2.0 * x)).sqrt() * (-x).exp();
            assert!(
                (bessel_k(0.5, x) - want).abs() < 1e-12 * want.max(1e-300),
                "x={x}"
            );
        }
    }
}
