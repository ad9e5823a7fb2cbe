//! Prometheus' duration strings (`1h30m`, `5m`, `90s`, `0`): the `for`, `interval` and
//! `eval_time` fields of rule and test files use them, parsed and printed the way Prometheus'
//! `model.Duration` does so messages read the same as promtool's.

const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration to milliseconds. Units must appear in the order y, w, d, h, m, s, ms,
/// each at most once; "0" alone is zero.
pub fn parse(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    if s == "0" {
        return Ok(0);
    }
    let invalid = || format!("not a valid duration string: {s:?}");
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        // "ms" before "m" so that "5ms" is not read as five minutes and an "s".
        let found = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len());
        let Some((i, (unit, mult))) = found else {
            return Err(invalid());
        };
        total = n
            .checked_mul(*mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
        rest = &rest[unit.len()..];
        next_unit = i + 1;
    }
    Ok(total)
}

/// Formats milliseconds as Prometheus does: years and weeks only when exact.
pub fn format(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut ms = ms;
    let mut out = String::new();
    for (unit, mult) in UNITS {
        let exact_only = unit == "y" || unit == "w";
        if exact_only && ms % mult != 0 {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_prometheus() {
        assert_eq!(parse("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse("5ms").unwrap(), 5);
        assert_eq!(parse("1m5ms").unwrap(), 60_005);
        assert_eq!(parse("0").unwrap(), 0);
        assert!(parse("300").is_err());
        assert!(parse("5m1h").is_err());
        assert!(parse("").is_err());
        assert_eq!(format(5_400_000), "1h30m");
        assert_eq!(format(0), "0s");
        assert_eq!(format(90 * 86_400_000), "90d");
        assert_eq!(format(14 * 86_400_000), "2w");
    }
}
