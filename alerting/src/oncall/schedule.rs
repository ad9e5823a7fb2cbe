//! Who is on call at an instant, and when that changes: the pure model of an on-call schedule,
//! built like PagerDuty's and Grafana OnCall's.
//!
//! A schedule is a stack of layers. Each layer is a rotation: its users take turns, one shift
//! each (`shift`, e.g. one week), counting from the layer's `start` instant; it may be limited
//! to some days of the week and hours of the day (`restrict`), and may end. At an instant, the
//! *last* layer that has somebody on call wins (later layers override earlier ones; a layer
//! with nobody then — not started yet, ended, outside its hours — lets the layers below show
//! through). Overrides (a user, from, to) sit on top of every layer; when overrides overlap,
//! the one listed last wins. When no layer and no override covers an instant, nobody is on
//! call: a gap, which the caller must handle (escalation records it on the alert's timeline).
//!
//! Time is UTC only: instants are Unix milliseconds, and a restriction's days and hours are
//! read in UTC. Nothing here reads a clock or a file.

/// Milliseconds in a minute, a day and a week.
const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

/// One on-call schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    /// Lowest first: a later layer overrides an earlier one where it has somebody on call.
    pub layers: Vec<Layer>,
    /// On top of every layer; the last matching one wins.
    pub overrides: Vec<Override>,
}

/// One rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    /// In hand-off order; the first user's first shift begins at `start_ms`.
    pub users: Vec<String>,
    pub start_ms: i64,
    /// The layer covers nothing from here on.
    pub end_ms: Option<i64>,
    /// How long each user's turn lasts (at least a minute).
    pub shift_ms: i64,
    /// Only on these days and hours (UTC); `None` is around the clock.
    pub restrict: Option<Restriction>,
}

/// Days of the week and a window of the day (UTC) a layer is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restriction {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after midnight; the window is `[from, to)`. When `from > to` the window runs
    /// over midnight (`22:00-06:00`). The day and the hour are each checked at the instant
    /// itself: a Friday night window `22:00-06:00` on `fri` alone covers Friday 22:00-24:00
    /// and Friday 00:00-06:00, so list `sat` too for the early Saturday hours.
    pub from_minute: u32,
    pub to_minute: u32,
}

/// Somebody on call instead of whoever the layers say, for `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub user: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// A change of who is on call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub at_ms: i64,
    /// `None`: nobody from then on (a gap).
    pub user: Option<String>,
}

impl Restriction {
    /// Around the clock on every day.
    pub const ALWAYS: Restriction = Restriction {
        days: [true; 7],
        from_minute: 0,
        to_minute: 24 * 60,
    };

    pub fn covers(&self, at_ms: i64) -> bool {
        let day_index = at_ms.div_euclid(DAY);
        // 1970-01-01 was a Thursday (index 3 with Monday as 0).
        let weekday = (day_index + 3).rem_euclid(7) as usize;
        let minute = (at_ms.rem_euclid(DAY) / MINUTE) as u32;
        let in_hours = if self.from_minute <= self.to_minute {
            minute >= self.from_minute && minute < self.to_minute
        } else {
            minute >= self.from_minute || minute < self.to_minute
        };
        self.days[weekday] && in_hours
    }
}

impl Layer {
    /// Who this layer has on call at `at_ms`, if anybody.
    pub fn on_call(&self, at_ms: i64) -> Option<&str> {
        if self.users.is_empty() || self.shift_ms <= 0 || at_ms < self.start_ms {
            return None;
        }
        if self.end_ms.is_some_and(|e| at_ms >= e) {
            return None;
        }
        if self.restrict.is_some_and(|r| !r.covers(at_ms)) {
            return None;
        }
        let shift = (at_ms - self.start_ms) / self.shift_ms;
        let i = shift.rem_euclid(self.users.len() as i64) as usize;
        Some(&self.users[i])
    }

    /// Instants in `[from, until]` where this layer's answer may change.
    fn boundaries(&self, from: i64, until: i64, out: &mut Vec<i64>) {
        out.push(self.start_ms);
        if let Some(e) = self.end_ms {
            out.push(e);
        }
        if self.shift_ms > 0 {
            let first = if from <= self.start_ms {
                0
            } else {
                (from - self.start_ms) / self.shift_ms
            };
            let mut k = first;
            loop {
                let t = self.start_ms + k * self.shift_ms;
                if t > until {
                    break;
                }
                out.push(t);
                k += 1;
            }
        }
        if let Some(r) = self.restrict {
            let mut day = from.div_euclid(DAY) * DAY;
            while day <= until {
                out.push(day);
                out.push(day + i64::from(r.from_minute) * MINUTE);
                out.push(day + i64::from(r.to_minute) * MINUTE);
                day += DAY;
            }
        }
    }
}

impl Schedule {
    /// Who is on call at `at_ms`: the last override covering it (from `extra`, then the
    /// schedule's own, so overrides added later — from the UI — win), else the highest layer
    /// with somebody on call; `None` when nobody is.
    pub fn who_is_on_call<'a>(&'a self, extra: &'a [Override], at_ms: i64) -> Option<&'a str> {
        let covering = |o: &&Override| o.from_ms <= at_ms && at_ms < o.to_ms;
        if let Some(o) = extra.iter().rev().find(covering) {
            return Some(&o.user);
        }
        if let Some(o) = self.overrides.iter().rev().find(covering) {
            return Some(&o.user);
        }
        self.layers.iter().rev().find_map(|l| l.on_call(at_ms))
    }

    /// The changes of who is on call after `from_ms` up to `until_ms`, at most `max` of them,
    /// with `extra` overrides as in [`Schedule::who_is_on_call`].
    pub fn handoffs(
        &self,
        extra: &[Override],
        from_ms: i64,
        until_ms: i64,
        max: usize,
    ) -> Vec<Handoff> {
        let mut instants = Vec::new();
        for l in &self.layers {
            l.boundaries(from_ms, until_ms, &mut instants);
        }
        for o in self.overrides.iter().chain(extra) {
            instants.push(o.from_ms);
            instants.push(o.to_ms);
        }
        instants.retain(|t| *t > from_ms && *t <= until_ms);
        instants.sort_unstable();
        instants.dedup();
        let mut current = self.who_is_on_call(extra, from_ms).map(str::to_string);
        let mut out = Vec::new();
        for t in instants {
            let now = self.who_is_on_call(extra, t).map(str::to_string);
            if now != current {
                out.push(Handoff {
                    at_ms: t,
                    user: now.clone(),
                });
                if out.len() >= max {
                    break;
                }
                current = now;
            }
        }
        out
    }

    /// Every user the schedule names (layers and overrides), for checks against the users
    /// that exist.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.layers
            .iter()
            .flat_map(|l| l.users.iter())
            .chain(self.overrides.iter().map(|o| &o.user))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * MINUTE;
    /// Monday 2026-01-05 00:00:00 UTC.
    const MON: i64 = 1_767_571_200_000;

    fn layer(name: &str, users: &[&str], start_ms: i64, shift_ms: i64) -> Layer {
        Layer {
            name: name.into(),
            users: users.iter().map(|u| u.to_string()).collect(),
            start_ms,
            end_ms: None,
            shift_ms,
            restrict: None,
        }
    }

    fn sched(layers: Vec<Layer>, overrides: Vec<Override>) -> Schedule {
        Schedule {
            name: "primary".into(),
            layers,
            overrides,
        }
    }

    fn ov(user: &str, from_ms: i64, to_ms: i64) -> Override {
        Override {
            user: user.into(),
            from_ms,
            to_ms,
        }
    }

    #[test]
    fn the_reference_monday_is_a_monday() {
        // 2026-01-05 is a Monday: a weekday-only window covers it and not the Sunday before.
        let weekdays = Restriction {
            days: [true, true, true, true, true, false, false],
            ..Restriction::ALWAYS
        };
        assert!(weekdays.covers(MON));
        assert!(!weekdays.covers(MON - 1));
        assert!(weekdays.covers(MON + 5 * DAY - 1));
        assert!(!weekdays.covers(MON + 5 * DAY));
    }

    #[test]
    fn a_rotation_hands_off_exactly_at_shift_boundaries_and_wraps_around() {
        let s = sched(
            vec![layer("daily", &["ann", "ben", "cy"], MON, DAY)],
            vec![],
        );
        let golden = [
            (MON - 1, None),
            (MON, Some("ann")),
            (MON + DAY - 1, Some("ann")),
            (MON + DAY, Some("ben")),
            (MON + 2 * DAY, Some("cy")),
            (MON + 3 * DAY, Some("ann")),
            (MON + 3 * DAY + 12 * HOUR, Some("ann")),
            (MON + 301 * DAY, Some("ben")),
            (MON + 302 * DAY, Some("cy")),
        ];
        for (at, want) in golden {
            assert_eq!(s.who_is_on_call(&[], at), want, "at {at}");
        }
    }

    #[test]
    fn a_later_layer_overrides_an_earlier_one_only_where_it_has_somebody() {
        // A weekly layer, and on top a business-hours layer on weekdays.
        let mut office = layer("office", &["dee", "eve"], MON, DAY);
        office.restrict = Some(Restriction {
            days: [true, true, true, true, true, false, false],
            from_minute: 9 * 60,
            to_minute: 17 * 60,
        });
        let s = sched(
            vec![layer("weekly", &["ann", "ben"], MON, 7 * DAY), office],
            vec![],
        );
        let golden = [
            (MON + 8 * HOUR, Some("ann")),
            (MON + 9 * HOUR, Some("dee")),
            (MON + 17 * HOUR - 1, Some("dee")),
            (MON + 17 * HOUR, Some("ann")),
            (MON + DAY + 10 * HOUR, Some("eve")),
            // Saturday: the office layer is off, the weekly one shows through.
            (MON + 5 * DAY + 10 * HOUR, Some("ann")),
            // The second week: the weekly layer hands off to ben.
            (MON + 7 * DAY + 8 * HOUR, Some("ben")),
        ];
        for (at, want) in golden {
            assert_eq!(s.who_is_on_call(&[], at), want, "at {at}");
        }
    }

    #[test]
    fn overrides_win_over_every_layer_and_the_last_listed_wins() {
        let s = sched(
            vec![layer("daily", &["ann", "ben"], MON, DAY)],
            vec![
                ov("zed", MON + 2 * HOUR, MON + 4 * HOUR),
                ov("yan", MON + 3 * HOUR, MON + 5 * HOUR),
            ],
        );
        assert_eq!(s.who_is_on_call(&[], MON + HOUR), Some("ann"));
        assert_eq!(s.who_is_on_call(&[], MON + 2 * HOUR), Some("zed"));
        assert_eq!(s.who_is_on_call(&[], MON + 3 * HOUR), Some("yan"));
        assert_eq!(s.who_is_on_call(&[], MON + 5 * HOUR), Some("ann"));
        // An override added later (from the UI) wins over the file's.
        let extra = [ov("xia", MON + 3 * HOUR, MON + 6 * HOUR)];
        assert_eq!(s.who_is_on_call(&extra, MON + 3 * HOUR), Some("xia"));
        // An override covers a gap too.
        assert_eq!(s.who_is_on_call(&extra, MON - DAY), None);
        let extra = [ov("xia", MON - DAY, MON - DAY + HOUR)];
        assert_eq!(s.who_is_on_call(&extra, MON - DAY), Some("xia"));
    }

    #[test]
    fn gaps_leave_nobody_on_call() {
        let mut l = layer("nights", &["ann"], MON, DAY);
        l.end_ms = Some(MON + 2 * DAY);
        l.restrict = Some(Restriction {
            days: [true; 7],
            from_minute: 22 * 60,
            to_minute: 6 * 60,
        });
        let s = sched(vec![l], vec![]);
        assert_eq!(s.who_is_on_call(&[], MON + 5 * HOUR), Some("ann"));
        assert_eq!(s.who_is_on_call(&[], MON + 6 * HOUR), None);
        assert_eq!(s.who_is_on_call(&[], MON + 23 * HOUR), Some("ann"));
        assert_eq!(s.who_is_on_call(&[], MON + 2 * DAY + HOUR), None, "ended");
        assert_eq!(sched(vec![], vec![]).who_is_on_call(&[], MON), None);
    }

    #[test]
    fn handoffs_list_each_change_once_including_gaps() {
        let mut nights = layer("nights", &["ann", "ben"], MON, DAY);
        nights.restrict = Some(Restriction {
            days: [true; 7],
            from_minute: 0,
            to_minute: 8 * 60,
        });
        let s = sched(
            vec![nights],
            vec![ov("cy", MON + DAY + HOUR, MON + DAY + 2 * HOUR)],
        );
        let got = s.handoffs(&[], MON - HOUR, MON + 2 * DAY, 10);
        let h = |at_ms: i64, u: Option<&str>| Handoff {
            at_ms,
            user: u.map(str::to_string),
        };
        assert_eq!(
            got,
            [
                h(MON, Some("ann")),
                h(MON + 8 * HOUR, None),
                h(MON + DAY, Some("ben")),
                h(MON + DAY + HOUR, Some("cy")),
                h(MON + DAY + 2 * HOUR, Some("ben")),
                h(MON + DAY + 8 * HOUR, None),
                h(MON + 2 * DAY, Some("ann")),
            ]
        );
        assert_eq!(s.handoffs(&[], MON - HOUR, MON + 2 * DAY, 2).len(), 2);
        // Unchanged on-call user across a boundary is no hand-off.
        let one = sched(vec![layer("solo", &["ann"], MON, HOUR)], vec![]);
        assert_eq!(one.handoffs(&[], MON, MON + 5 * HOUR, 10), []);
    }
}
