//! p-values of the two-sample Kolmogorov–Smirnov statistic, chosen as scipy's `ks_2samp` does.
//!
//! statrs has no two-sample or finite-n Kolmogorov distribution, so the lattice-path and series
//! formulas are written out here; the fixture test checks them against scipy to 1e-7.

use statrs::function::gamma::ln_gamma;

/// Above this sample size scipy's `method="auto"` leaves the exact p-value for the asymptotic one.
pub const MAX_EXACT_N: u64 = 10_000;

/// Two-sided p-value for statistic `d` of samples of sizes `n1` and `n2`, exact when
/// `max(n1, n2) <= 10000` and otherwise `kstwo.sf(d, round(n1*n2/(n1+n2)))`, as scipy does.
pub fn two_sample_p_value(n1: u64, n2: u64, d: f64) -> f64 {
    if n1.max(n2) <= MAX_EXACT_N {
        exact_two_sample_sf(n1, n2, d)
    } else {
        asymptotic_two_sample_sf(n1, n2, d)
    }
}

/// Whether [`two_sample_p_value`] uses the exact distribution for these sizes.
pub fn uses_exact(n1: u64, n2: u64) -> bool {
    n1.max(n2) <= MAX_EXACT_N
}

/// scipy's asymptotic choice: the one-sample distribution at the effective size
/// `round(n1*n2/(n1+n2))`.
pub fn asymptotic_two_sample_sf(n1: u64, n2: u64, d: f64) -> f64 {
    let en = n1 as f64 * n2 as f64 / (n1 + n2) as f64;
    one_sample_sf(en.round() as u64, d)
}

/// Exact two-sided p-value: the probability that a uniformly random lattice path from (0,0) to
/// (n1,n2) leaves the band |i/n1 - j/n2| < d (ties in the data are ignored, as in scipy).
pub fn exact_two_sample_sf(n1: u64, n2: u64, d: f64) -> f64 {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) as f64 * n2 as f64;
    let h = (d * lcm).round() as u64;
    if h == 0 {
        return 1.0;
    }
    let p = if n1 == n2 {
        equal_sizes_sf(n1, h)
    } else {
        lattice_sf(n1, n2, h * g)
    };
    p.clamp(0.0, 1.0)
}

/// p = 2 * sum_k (-1)^(k-1) C(2n, n-kh) / C(2n, n), nested from the largest k down so that no
/// term is subtracted from a nearly equal one (accurate to p ~ 1e-18).
fn equal_sizes_sf(n: u64, h: u64) -> f64 {
    let mut p = 0.0;
    let mut k = n / h;
    loop {
        let mut a = 1.0;
        for j in 0..h {
            // The factor reaches 0 (and the product stays 0) once k h + j = n.
            let Some(top) = n.checked_sub(k * h + j) else {
                break;
            };
            a = top as f64 * a / (n + k * h + j + 1) as f64;
        }
        p = a * (1.0 - p);
        if k == 0 {
            break;
        }
        k -= 1;
    }
    2.0 * p
}

/// Q(i, j): probability that a random monotone path to (i, j) has already touched the region
/// |i*n2 - j*n1| >= hg. Computing the outside probability directly keeps small p accurate.
fn lattice_sf(n1: u64, n2: u64, hg: u64) -> f64 {
    let outside = |i: u64, j: u64| (i * n2).abs_diff(j * n1) >= hg;
    let n2u = n2 as usize;
    let mut col = vec![0.0f64; n2u + 1];
    for j in 0..=n2u {
        col[j] = if outside(0, j as u64) {
            1.0
        } else if j > 0 {
            col[j - 1]
        } else {
            0.0
        };
    }
    for i in 1..=n1 {
        // col holds column i-1; update in place, top to bottom, so col[j-1] is already column i.
        for j in 0..=n2u {
            col[j] = if outside(i, j as u64) {
                1.0
            } else if j == 0 {
                col[0]
            } else {
                let jf = j as f64;
                let fi = i as f64;
                (fi * col[j] + jf * col[j - 1]) / (fi + jf)
            };
        }
    }
    col[n2u]
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Survival function of the two-sided one-sample KS statistic D_n (scipy's `kstwo.sf`), with
/// scipy's choice of method by region: closed forms at the extremes, 2 x Smirnov's one-sided
/// probability where the two tails cannot both be crossed (n x^2 >= 2.2, or x >= 0.5), and the
/// Pelz–Good expansion elsewhere.
///
/// Known difference: for n <= 140 and n x^2 < 4 scipy uses the Durbin matrix / Pomeranz
/// recursions, which are not implemented; Pelz–Good is used there instead (it reaches that case
/// only for very unequal sample sizes above 10000 values, where scipy itself is asymptotic).
pub fn one_sample_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        // Ruben–Gambino: P(D_n <= x) = n!/n^n (2t-1)^n for 1/(2n) <= x <= 1/n.
        let ln_cdf = ln_gamma(nf + 1.0) - nf * nf.ln() + nf * (2.0 * t - 1.0).ln();
        return (1.0 - ln_cdf.exp()).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nxx = t * x;
    if nxx >= 370.0 {
        return 0.0;
    }
    if nxx >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    pelz_good_sf(n, x).clamp(0.0, 1.0)
}

/// One-sided Smirnov survival function P(D+_n >= x), Birnbaum–Tingey:
/// x * sum_{j=0}^{floor(n(1-x))} C(n,j) (1-x-j/n)^(n-j) (x+j/n)^(j-1), summed in logs.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let jmax = (nf * (1.0 - x)).floor() as u64;
    let mut ln_binom = 0.0; // ln C(n, 0)
    let mut sum = 0.0;
    for j in 0..=jmax {
        if j > 0 {
            // C(n, j) = C(n, j-1) (n-j+1)/j: incremental, cheaper than three ln-gammas per term.
            ln_binom += ((n - j + 1) as f64).ln() - (j as f64).ln();
        }
        let jf = j as f64;
        let rest = 1.0 - x - jf / nf;
        if rest <= 0.0 {
            // (0)^(n-j) with n-j > 0 contributes nothing.
            if n > j {
                continue;
            }
        }
        let ln_rest = if n > j { (nf - jf) * rest.ln() } else { 0.0 };
        let ln_term = ln_binom + ln_rest + (jf - 1.0) * (x + jf / nf).ln();
        sum += ln_term.exp();
    }
    (x * sum).clamp(0.0, 1.0)
}

/// Pelz–Good (1976) expansion of P(D_n > x): the Kolmogorov limit plus its 1/sqrt(n), 1/n and
/// 1/n^1.5 corrections, each written in theta-function form so it converges for small z.
pub fn pelz_good_sf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let z2 = z * z;
    let z4 = z2 * z2;
    let z6 = z4 * z2;
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -745.0 {
        return 1.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z4 * z4;
    let maxk = (16.0 * z / PI).ceil().max(1.0) as u64;
    let mut k = [0.0f64; 4];
    // Horner scheme over sum_k c_k q^((2k-1)^2) (odd terms only).
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let m2 = m * m;
        let m4 = m2 * m2;
        let m6 = m4 * m2;
        let qpower = q.powf(8.0 * kk as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (acc, c) in k.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let sqrt2pi = (2.0 * PI).sqrt();
    let denominators = [z, 6.0 * z4, 72.0 * z6 * z, 6480.0 * z4 * z6];
    for (acc, den) in k.iter_mut().zip(denominators) {
        *acc = *acc * q * sqrt2pi / den;
    }
    // The remaining sums over all integers k for the K2 and K3 terms.
    let q2 = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for kk in (1..=maxk).rev() {
        let kf = kk as f64;
        let ksq = kf * kf;
        let qp = q2.powf(ksq);
        k2extra += ksq * qp;
        let kspi = PI * kf;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    k[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z2 * z);
    k[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    let cdf = k[0] + k[1] / nf.sqrt() + k[2] / nf + k[3] / (nf * nf.sqrt());
    1.0 - cdf
}

/// The Kolmogorov limit Q(sqrt(en) d) = 2 sum_k (-1)^(k-1) exp(-2 k^2 lambda^2): simpler, and
/// above the exact value for small samples (0.00945 against 0.00725 at n = 50 and 60).
pub fn kolmogorov_limit_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    let mut s = 0.0;
    for k in 1..200u32 {
        let kf = f64::from(k);
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        s += if k % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pelz_good_meets_twice_smirnov_less_the_double_crossing() {
        // 2 x Smirnov counts paths crossing both bands twice; in the limit that excess is
        // 2 exp(-8 lambda^2) (2e-20 = 4.1e-9 at lambda^2 = 2.5), and Pelz-Good's own error is
        // O(n^-2), so what remains must be far smaller than either.
        for n in [10_000u64, 100_000, 1_000_000] {
            let x = (2.5 / n as f64).sqrt();
            let pg = pelz_good_sf(n, x);
            let sm = 2.0 * smirnov_sf(n, x) - 2.0 * (-8.0f64 * 2.5).exp();
            assert!((pg - sm).abs() < 5e-10, "n={n}: {pg:e} vs {sm:e}");
        }
    }

    #[test]
    fn pelz_good_tends_to_the_kolmogorov_limit() {
        let n = 100_000_000u64;
        for lambda in [0.5, 0.8, 1.0, 1.3] {
            let x = lambda / (n as f64).sqrt();
            let pg = pelz_good_sf(n, x);
            let lim = kolmogorov_limit_sf(lambda);
            assert!((pg - lim).abs() < 1e-3, "lambda={lambda}: {pg} vs {lim}");
        }
    }

    #[test]
    fn exact_p_value_of_a_complete_separation() {
        // Two samples of 3 that do not overlap: only 2 of the C(6,3) = 20 paths reach D = 1.
        let p = exact_two_sample_sf(3, 3, 1.0);
        assert!((p - 0.1).abs() < 1e-15, "{p}");
        let p = exact_two_sample_sf(2, 3, 1.0);
        assert!((p - 0.2).abs() < 1e-15, "{p}");
    }
}
