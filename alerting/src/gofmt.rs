//! Go's number formatting (`fmt` and `strconv`), because alert labels and annotations print
//! `{{ $value }}`, `printf "%.2f"` and `humanize` exactly as Prometheus does, and a rule unit
//! test compares those strings byte for byte.

/// The decimal digits of `v` (no trailing zeros) and the position of the decimal point:
/// `v = 0.d1d2d3... * 10^dp`. `sig` rounds to that many significant digits; `None` gives the
/// shortest digits that read back as `v`.
fn digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mant, exp) = s
        .split_once('e')
        .expect("Rust's {:e} always has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let mut d: String = mant.chars().filter(|c| *c != '.').collect();
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    (d, exp + 1)
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

fn sign(v: f64) -> &'static str {
    if v.is_sign_negative() {
        "-"
    } else {
        ""
    }
}

/// `%e` with `prec` digits after the point from already-rounded digits.
fn layout_e(neg: &str, d: &str, dp: i32, prec: usize, upper: bool) -> String {
    let mut out = String::from(neg);
    out.push_str(&d[..1]);
    if prec > 0 {
        out.push('.');
        let frac: String = d[1..]
            .chars()
            .chain(std::iter::repeat('0'))
            .take(prec)
            .collect();
        out.push_str(&frac);
    }
    let exp = if d == "0" { 0 } else { dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

/// `%f` with `prec` digits after the point from already-rounded digits.
fn layout_f(neg: &str, d: &str, dp: i32, prec: usize) -> String {
    let mut out = String::from(neg);
    if dp <= 0 {
        out.push('0');
    } else {
        for i in 0..dp as usize {
            out.push(d.as_bytes().get(i).map_or('0', |b| *b as char));
        }
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                d.as_bytes().get(idx as usize).map_or('0', |b| *b as char)
            };
            out.push(c);
        }
    }
    out
}

/// Go's `%g` (and `%v` with `prec = None`), as `strconv.FormatFloat(v, 'g', prec, 64)`.
pub fn format_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = sign(v);
    let shortest = prec.is_none();
    let (d, dp) = if v == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(v, prec.map(|p| p.max(1)))
    };
    let nd = d.len() as i32;
    let mut p = match prec {
        None => nd,
        Some(p) => p.max(1) as i32,
    };
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    if v != 0.0 && (exp < -4 || exp >= eprec) {
        if p > nd {
            p = nd;
        }
        return layout_e(neg, &d, dp, (p - 1) as usize, upper);
    }
    if p > dp {
        p = nd;
    }
    layout_f(neg, &d, dp, (p - dp).max(0) as usize)
}

/// Go's `%e` with a precision (default 6).
pub fn format_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let (d, dp) = if v == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(v, Some(prec + 1))
    };
    layout_e(sign(v), &d, dp, prec, upper)
}

/// `strconv.FormatFloat(v, 'E', -1, 64)`: the shortest digits in exponent form (promtool
/// prints sample values so).
pub fn format_e_shortest(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let (d, dp) = if v == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(v, None)
    };
    layout_e(sign(v), &d, dp, d.len() - 1, true)
}

/// Go's `%f` with a precision (default 6).
pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    // Rust rounds the exact binary value half to even at the requested digit, as Go does.
    format!("{v:.prec$}")
}

/// How Go's `fmt.Sprint` prints a float64 (`%v`).
pub fn format_v(v: f64) -> String {
    format_g(v, None, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_output() {
        // Expected strings are what Go 1.19 prints for the same fmt calls.
        assert_eq!(format_v(1.0), "1");
        assert_eq!(format_v(0.5), "0.5");
        assert_eq!(format_v(123456.0), "123456");
        assert_eq!(format_v(1e6), "1e+06");
        assert_eq!(format_v(1234567.0), "1.234567e+06");
        assert_eq!(format_v(0.0001), "0.0001");
        assert_eq!(format_v(0.00001), "1e-05");
        assert_eq!(format_v(-2.5), "-2.5");
        assert_eq!(format_v(f64::NAN), "NaN");
        assert_eq!(format_v(f64::INFINITY), "+Inf");
        assert_eq!(format_g(1234.5, Some(4), false), "1234");
        assert_eq!(format_g(12345.0, Some(4), false), "1.234e+04");
        // 12.345 is stored as 12.3450000000000006..., so it rounds up.
        assert_eq!(format_g(12.345, Some(4), false), "12.35");
        assert_eq!(format_g(1.0, Some(4), false), "1");
        assert_eq!(format_g(0.0, Some(4), false), "0");
        assert_eq!(format_g(100.0, Some(4), false), "100");
        assert_eq!(format_g(0.000123456, Some(4), false), "0.0001235");
        assert_eq!(format_e(1234.5678, 6, false), "1.234568e+03");
        assert_eq!(format_e(0.0, 2, false), "0.00e+00");
        assert_eq!(format_f(2.0 / 3.0, 2), "0.67");
        assert_eq!(format_e_shortest(2.0), "2E+00");
        assert_eq!(format_e_shortest(0.05), "5E-02");
        assert_eq!(format_e_shortest(1234.5), "1.2345E+03");
        assert_eq!(format_f(f64::NEG_INFINITY, 2), "-Inf");
    }
}
