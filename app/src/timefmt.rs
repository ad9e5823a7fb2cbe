//! UTC time formatting and parsing for the pages, without a date library: the browser
//! bundle stays small and the server and the browser print exactly the same text, which
//! hydration needs.

use model::civil::{civil_from_days, days_from_civil};
use model::TimestampMs;

const MS_PER_DAY: i64 = 86_400_000;

struct Parts {
    y: i64,
    mo: u32,
    d: u32,
    h: i64,
    mi: i64,
    s: i64,
}

fn parts(ms: TimestampMs) -> Parts {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY) / 1000;
    let (y, mo, d) = civil_from_days(days);
    Parts {
        y,
        mo,
        d,
        h: rem / 3600,
        mi: rem / 60 % 60,
        s: rem % 60,
    }
}

/// `2025-11-26 17:42:05 UTC`.
pub fn format_utc(ms: TimestampMs) -> String {
    let p = parts(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        p.y, p.mo, p.d, p.h, p.mi, p.s
    )
}

/// `2025-11-26 17:42:05`: what the custom range inputs show and accept.
pub fn format_utc_input(ms: TimestampMs) -> String {
    let p = parts(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        p.y, p.mo, p.d, p.h, p.mi, p.s
    )
}

/// An axis label whose precision suits the visible span: seconds for spans under ten
/// minutes, the date only when the span covers more than a day.
pub fn format_axis(ms: TimestampMs, span_ms: i64) -> String {
    let p = parts(ms);
    if span_ms > 2 * MS_PER_DAY {
        format!("{:02}-{:02} {:02}:{:02}", p.mo, p.d, p.h, p.mi)
    } else if span_ms <= 10 * 60_000 {
        format!("{:02}:{:02}:{:02}", p.h, p.mi, p.s)
    } else {
        format!("{:02}:{:02}", p.h, p.mi)
    }
}

/// Parses a time typed by a user: milliseconds since the epoch, or UTC as
/// `YYYY-MM-DD HH:MM[:SS]` (a `T` instead of the space and a trailing `Z` are accepted too).
pub fn parse_utc(input: &str) -> Result<TimestampMs, String> {
    let s = input.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .map_err(|_| format!("time {s:?} is too large for milliseconds since 1970"));
    }
    let bad = || {
        format!(
            "cannot read time {s:?}: write UTC as YYYY-MM-DD HH:MM[:SS] (e.g. 2025-01-31 13:05) or milliseconds since 1970"
        )
    };
    let s = s.strip_suffix('Z').unwrap_or(s).trim_end_matches(" UTC");
    let (date, time) = s.split_once([' ', 'T']).ok_or_else(bad)?;
    let mut d = date.split('-');
    let (y, mo, day) = match (d.next(), d.next(), d.next(), d.next()) {
        (Some(y), Some(m), Some(d), None) => (y, m, d),
        _ => return Err(bad()),
    };
    let y: i64 = y.parse().map_err(|_| bad())?;
    let mo: u32 = mo.parse().map_err(|_| bad())?;
    let day: u32 = day.parse().map_err(|_| bad())?;
    let mut t = time.trim().split(':');
    let h: i64 = t.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let mi: i64 = t.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let sec: i64 = match t.next() {
        Some(x) => x.parse().map_err(|_| bad())?,
        None => 0,
    };
    if t.next().is_some() {
        return Err(bad());
    }
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return Err(format!("time {s:?}: month {mo} does not exist")),
    };
    if day == 0
        || day > days_in_month
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..60).contains(&sec)
    {
        return Err(format!("time {s:?} is not a valid date and time of day"));
    }
    Ok(days_from_civil(y, mo, day) * MS_PER_DAY + (h * 3600 + mi * 60 + sec) * 1000)
}

/// A rough duration for people: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn format_duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}

/// `3 s ago`, or `in 2 s` when the clocks disagree.
pub fn format_ago(now: TimestampMs, then: TimestampMs) -> String {
    if then > now + 1000 {
        format!("in {}", format_duration_ms(then - now))
    } else {
        format!("{} ago", format_duration_ms(now - then))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 12:34:56 UTC, a leap day, from `date -u -d ... +%s`.
        assert_eq!(format_utc(951_827_696_000), "2000-02-29 12:34:56 UTC");
        assert_eq!(format_utc(1_764_178_925_123), "2025-11-26 17:42:05 UTC");
        assert_eq!(format_utc(-1000), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn parse_inverts_format_and_accepts_iso_and_millis() {
        for ms in [0, 951_827_696_000, 1_764_178_925_000, 4_102_444_799_000] {
            assert_eq!(parse_utc(&format_utc_input(ms)), Ok(ms));
            assert_eq!(parse_utc(&format_utc(ms)), Ok(ms));
        }
        assert_eq!(parse_utc("2000-02-29T12:34:56Z"), Ok(951_827_696_000));
        assert_eq!(parse_utc("2000-02-29 12:34"), Ok(951_827_640_000));
        assert_eq!(parse_utc(" 1764178925123 "), Ok(1_764_178_925_123));
    }

    #[test]
    fn parse_rejects_impossible_dates_with_the_expected_format() {
        assert!(parse_utc("2001-02-29 00:00")
            .unwrap_err()
            .contains("not a valid date"));
        assert!(parse_utc("2001-13-01 00:00")
            .unwrap_err()
            .contains("month 13"));
        assert!(parse_utc("yesterday")
            .unwrap_err()
            .contains("YYYY-MM-DD HH:MM"));
        assert!(parse_utc("2001-01-01 25:00").is_err());
    }

    #[test]
    fn axis_labels_gain_precision_as_the_span_shrinks() {
        let t = 951_827_696_000;
        assert_eq!(format_axis(t, 5 * 60_000), "12:34:56");
        assert_eq!(format_axis(t, 3_600_000), "12:34");
        assert_eq!(format_axis(t, 7 * MS_PER_DAY), "02-29 12:34");
    }

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(format_ago(10_000, 7_000), "3 s ago");
        assert_eq!(format_ago(0, 5_000), "in 5 s");
        assert_eq!(format_duration_ms(3 * 3_600_000 + 5 * 60_000), "3 h 5 min");
        assert_eq!(
            format_duration_ms(2 * MS_PER_DAY + 4 * 3_600_000),
            "2 d 4 h"
        );
    }
}
