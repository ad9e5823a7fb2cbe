//! On-call files: schedules ([`schedule`]) and escalation policies, written in YAML and kept
//! under version control beside the rule files. Parsing is pure; every error names the
//! `line:column` it is about, as rule files' do.
//!
//! ```yaml
//! schedules:
//!   - name: primary
//!     layers:
//!       - name: weekly
//!         start: 2026-01-05T09:00:00Z    # RFC 3339; instants are UTC
//!         shift: 1w                      # Prometheus duration: 12h, 1d, 1w ...
//!         users: [ann, ben, cy]
//!       - name: office-hours             # a later layer overrides an earlier one
//!         start: 2026-01-05T00:00:00Z
//!         shift: 1d
//!         users: [dee]
//!         restrict: {days: [mon, tue, wed, thu, fri], hours: "09:00-17:00"}
//!     overrides:
//!       - {user: cy, from: 2026-12-24T00:00:00Z, to: 2026-12-27T00:00:00Z}
//! escalation_policies:
//!   - name: pipeline-pages
//!     levels:
//!       - after: 0s                      # since the group's first firing notice
//!         targets: [{schedule: primary}]
//!       - after: 15m
//!         targets: [{schedule: secondary}, {user: lead}, {channel: oncall-slack}]
//! ```
//!
//! Names of users, schedules and channels are only collected here ([`Reference`]); whether
//! they exist is for the caller, who knows the users and the configured channels.

pub mod schedule;

use crate::duration;
use crate::yaml::{self, err, Fields, Node, Pos, YamlError};
use schedule::{Layer, Override, Restriction, Schedule};

/// What one on-call file defines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OncallFile {
    pub schedules: Vec<Schedule>,
    pub policies: Vec<Policy>,
    /// Every user, schedule and channel the file names, with where.
    pub references: Vec<Reference>,
}

/// An escalation policy: levels tried in order while an alert group fires unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub levels: Vec<Level>,
}

/// One level: who is notified once `after_ms` has passed since the alert group's first firing
/// notice without an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub after_ms: i64,
    pub targets: Vec<Target>,
}

/// Whom a level notifies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Whoever the schedule has on call at the time.
    Schedule(String),
    /// A user, by name (mailed at their address).
    User(String),
    /// A configured notification channel (`[notifications.channels.<name>]`).
    Channel(String),
}

impl Target {
    pub fn kind(&self) -> RefKind {
        match self {
            Target::Schedule(_) => RefKind::Schedule,
            Target::User(_) => RefKind::User,
            Target::Channel(_) => RefKind::Channel,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Target::Schedule(n) | Target::User(n) | Target::Channel(n) => n,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind().as_str(), self.name())
    }
}

/// What a name in a file refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    User,
    Schedule,
    Channel,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::User => "user",
            RefKind::Schedule => "schedule",
            RefKind::Channel => "channel",
        }
    }
}

/// A name used in a file and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub pos: Pos,
    pub kind: RefKind,
    pub name: String,
}

/// Shortest shift a layer may have: shorter ones are a typo, and would make the hand-off list
/// of a page enormous.
pub const MIN_SHIFT_MS: i64 = 60_000;

/// Parses an on-call file. Every problem found is returned, each with its place.
pub fn parse(text: &str) -> Result<OncallFile, Vec<YamlError>> {
    let root = yaml::parse(text).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut out = OncallFile::default();
    let top = match Fields::new(
        &root,
        "an on-call file",
        &["schedules", "escalation_policies"],
    ) {
        Ok(f) => f,
        Err(e) => return Err(vec![e]),
    };
    if root.is_null() {
        return Err(vec![err(
            root.pos,
            "the file is empty; define `schedules:` and/or `escalation_policies:`",
        )]);
    }
    if let Some(list) = top.value("schedules") {
        match list.as_seq("schedules") {
            Ok(items) => {
                for item in items {
                    match schedule_of(item, &mut out.references) {
                        Ok(s) => {
                            if out.schedules.iter().any(|x| x.name == s.name) {
                                errors.push(err(
                                    item.pos,
                                    format!("schedule {:?} is defined twice", s.name),
                                ));
                            }
                            out.schedules.push(s);
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(list) = top.value("escalation_policies") {
        match list.as_seq("escalation_policies") {
            Ok(items) => {
                for item in items {
                    match policy_of(item, &mut out.references) {
                        Ok(p) => {
                            if out.policies.iter().any(|x| x.name == p.name) {
                                errors.push(err(
                                    item.pos,
                                    format!("escalation policy {:?} is defined twice", p.name),
                                ));
                            }
                            out.policies.push(p);
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort();
        Err(errors)
    }
}

fn name_of(f: &Fields<'_>, node: &Node, what: &str) -> Result<String, YamlError> {
    let Some(v) = f.value("name") else {
        return Err(err(node.pos, format!("{what} has no `name`")));
    };
    let n = v.as_str("name")?;
    if n.trim().is_empty() {
        return Err(err(v.pos, format!("{what} has an empty `name`")));
    }
    Ok(n)
}

fn schedule_of(node: &Node, refs: &mut Vec<Reference>) -> Result<Schedule, YamlError> {
    let f = Fields::new(
        node,
        "a schedule",
        &["name", "time_zone", "layers", "overrides"],
    )?;
    let name = name_of(&f, node, "a schedule")?;
    if let Some(tz) = f.value("time_zone") {
        let z = tz.as_str("time_zone")?;
        if !matches!(z.as_str(), "UTC" | "Etc/UTC" | "Z") {
            return Err(err(
                tz.pos,
                format!(
                    "time_zone {z:?} is not supported yet: schedules are in UTC; write the \
                     start instants and hours in UTC and remove the key (or write UTC)"
                ),
            ));
        }
    }
    let mut layers = Vec::new();
    if let Some(list) = f.value("layers") {
        for item in list.as_seq("layers")? {
            layers.push(layer_of(item, refs)?);
        }
    }
    let mut overrides = Vec::new();
    if let Some(list) = f.value("overrides") {
        for item in list.as_seq("overrides")? {
            let o = Fields::new(item, "an override", &["user", "from", "to"])?;
            let user = required(&o, item, "user", "an override")?;
            refs.push(Reference {
                pos: user.pos,
                kind: RefKind::User,
                name: user.as_str("user")?,
            });
            let from = instant(required(&o, item, "from", "an override")?)?;
            let to_node = required(&o, item, "to", "an override")?;
            let to = instant(to_node)?;
            if to <= from {
                return Err(err(to_node.pos, "an override must end after it starts"));
            }
            overrides.push(Override {
                user: user.as_str("user")?,
                from_ms: from,
                to_ms: to,
            });
        }
    }
    if layers.is_empty() && overrides.is_empty() {
        return Err(err(
            node.pos,
            format!(
                "schedule {name:?} has no layers and no overrides; nobody would ever be on call"
            ),
        ));
    }
    Ok(Schedule {
        name,
        layers,
        overrides,
    })
}

fn required<'a>(f: &Fields<'a>, node: &Node, key: &str, what: &str) -> Result<&'a Node, YamlError> {
    match f.value(key) {
        Some(v) if !v.is_null() => Ok(v),
        _ => Err(err(node.pos, format!("{what} needs `{key}`"))),
    }
}

fn layer_of(node: &Node, refs: &mut Vec<Reference>) -> Result<Layer, YamlError> {
    let f = Fields::new(
        node,
        "a layer",
        &["name", "start", "end", "shift", "users", "restrict"],
    )?;
    let name = match f.value("name") {
        Some(n) => n.as_str("name")?,
        None => String::new(),
    };
    let start_ms = instant(required(&f, node, "start", "a layer")?)?;
    let end_ms = match f.value("end") {
        Some(e) if !e.is_null() => {
            let t = instant(e)?;
            if t <= start_ms {
                return Err(err(e.pos, "a layer's `end` must be after its `start`"));
            }
            Some(t)
        }
        _ => None,
    };
    let shift = required(&f, node, "shift", "a layer")?;
    let shift_ms = duration::parse(&shift.as_str("shift")?).map_err(|e| {
        err(
            shift.pos,
            format!("shift: {e}; write a duration like 12h, 1d or 1w"),
        )
    })?;
    if shift_ms < MIN_SHIFT_MS {
        return Err(err(shift.pos, "a shift must be at least 1m"));
    }
    let users_node = required(&f, node, "users", "a layer")?;
    let mut users = Vec::new();
    for u in users_node.as_seq("users")? {
        let n = u.as_str("a user name")?;
        if n.trim().is_empty() {
            return Err(err(u.pos, "an empty user name"));
        }
        refs.push(Reference {
            pos: u.pos,
            kind: RefKind::User,
            name: n.clone(),
        });
        users.push(n);
    }
    if users.is_empty() {
        return Err(err(users_node.pos, "a layer needs at least one user"));
    }
    let restrict = match f.value("restrict") {
        Some(r) if !r.is_null() => Some(restriction_of(r)?),
        _ => None,
    };
    Ok(Layer {
        name,
        users,
        start_ms,
        end_ms,
        shift_ms,
        restrict,
    })
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn restriction_of(node: &Node) -> Result<Restriction, YamlError> {
    let f = Fields::new(node, "a restriction", &["days", "hours"])?;
    let mut r = Restriction::ALWAYS;
    if let Some(days) = f.value("days") {
        r.days = [false; 7];
        for d in days.as_seq("days")? {
            let name = d.as_str("a day")?.to_ascii_lowercase();
            let Some(i) = DAYS.iter().position(|x| name.starts_with(x)) else {
                return Err(err(
                    d.pos,
                    format!("{name:?} is not a day; write one of {}", DAYS.join(", ")),
                ));
            };
            r.days[i] = true;
        }
    }
    if let Some(h) = f.value("hours") {
        let text = h.as_str("hours")?;
        let bad = || {
            err(
                h.pos,
                format!(
                    "hours {text:?}: write a UTC window like \"09:00-17:00\" or \"22:00-06:00\""
                ),
            )
        };
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let minute = |s: &str| -> Option<u32> {
            let (hh, mm) = s.trim().split_once(':')?;
            let (hh, mm): (u32, u32) = (hh.parse().ok()?, mm.parse().ok()?);
            (hh <= 24 && mm < 60 && hh * 60 + mm <= 24 * 60).then_some(hh * 60 + mm)
        };
        r.from_minute = minute(a).ok_or_else(bad)?;
        r.to_minute = minute(b).ok_or_else(bad)?;
        if r.from_minute == r.to_minute {
            return Err(err(
                h.pos,
                "hours: the window is empty (it starts where it ends)",
            ));
        }
    }
    Ok(r)
}

/// An RFC 3339 instant (`2026-01-05T09:00:00Z`, or with an offset) as Unix milliseconds.
fn instant(node: &Node) -> Result<i64, YamlError> {
    let text = node.as_str("an instant")?;
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            err(
                node.pos,
                format!("{text:?} is not an RFC 3339 instant ({e}); write one like 2026-01-05T09:00:00Z"),
            )
        })
}

fn policy_of(node: &Node, refs: &mut Vec<Reference>) -> Result<Policy, YamlError> {
    let f = Fields::new(node, "an escalation policy", &["name", "levels"])?;
    let name = name_of(&f, node, "an escalation policy")?;
    let levels_node = required(&f, node, "levels", "an escalation policy")?;
    let mut levels: Vec<Level> = Vec::new();
    for item in levels_node.as_seq("levels")? {
        let l = Fields::new(item, "a level", &["after", "targets"])?;
        let after_ms = match l.value("after") {
            Some(a) if !a.is_null() => {
                let ms = duration::parse(&a.as_str("after")?).map_err(|e| {
                    err(
                        a.pos,
                        format!("after: {e}; write a duration like 0s, 10m or 1h"),
                    )
                })?;
                if let Some(prev) = levels.last() {
                    if ms < prev.after_ms {
                        return Err(err(
                            a.pos,
                            format!(
                                "levels must be in order of `after`: {} comes after a level at {}",
                                duration::format(ms),
                                duration::format(prev.after_ms)
                            ),
                        ));
                    }
                }
                ms
            }
            _ => 0,
        };
        let targets_node = required(&l, item, "targets", "a level")?;
        let mut targets = Vec::new();
        for t in targets_node.as_seq("targets")? {
            let tf = Fields::new(t, "a target", &["schedule", "user", "channel"])?;
            let mut found = Vec::new();
            for (key, make) in [
                ("schedule", Target::Schedule as fn(String) -> Target),
                ("user", Target::User),
                ("channel", Target::Channel),
            ] {
                if let Some(v) = tf.value(key) {
                    found.push((v, make(v.as_str(key)?)));
                }
            }
            if found.len() != 1 {
                return Err(err(
                    t.pos,
                    "a target is exactly one of {schedule: <name>}, {user: <name>}, {channel: <name>}",
                ));
            }
            let (v, target) = found.pop().expect("one");
            refs.push(Reference {
                pos: v.pos,
                kind: target.kind(),
                name: target.name().to_string(),
            });
            targets.push(target);
        }
        if targets.is_empty() {
            return Err(err(targets_node.pos, "a level needs at least one target"));
        }
        levels.push(Level { after_ms, targets });
    }
    if levels.is_empty() {
        return Err(err(
            levels_node.pos,
            "an escalation policy needs at least one level",
        ));
    }
    Ok(Policy { name, levels })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
schedules:
  - name: primary
    time_zone: UTC
    layers:
      - name: weekly
        start: 2026-01-05T09:00:00Z
        shift: 1w
        users: [ann, ben]
      - start: 2026-01-05T00:00:00+00:00
        shift: 1d
        users: [dee]
        restrict: {days: [mon, fri], hours: \"09:00-17:00\"}
    overrides:
      - {user: cy, from: 2026-12-24T00:00:00Z, to: 2026-12-27T00:00:00Z}
escalation_policies:
  - name: pages
    levels:
      - targets: [{schedule: primary}]
      - after: 15m
        targets: [{user: lead}, {channel: slack}]
";

    #[test]
    fn a_file_with_schedules_and_policies_parses() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.schedules.len(), 1);
        let s = &f.schedules[0];
        assert_eq!(s.layers[0].shift_ms, 7 * 86_400_000);
        assert_eq!(s.layers[0].start_ms, 1_767_603_600_000);
        let r = s.layers[1].restrict.unwrap();
        assert_eq!(r.days, [true, false, false, false, true, false, false]);
        assert_eq!((r.from_minute, r.to_minute), (540, 1020));
        assert_eq!(s.overrides[0].user, "cy");
        let p = &f.policies[0];
        assert_eq!(p.levels[0].after_ms, 0);
        assert_eq!(p.levels[1].after_ms, 900_000);
        assert_eq!(
            p.levels[1].targets,
            [Target::User("lead".into()), Target::Channel("slack".into())]
        );
        let names: Vec<(RefKind, &str, usize)> = f
            .references
            .iter()
            .map(|r| (r.kind, r.name.as_str(), r.pos.line))
            .collect();
        assert!(names.contains(&(RefKind::User, "ann", 8)), "{names:?}");
        assert!(
            names.contains(&(RefKind::Schedule, "primary", 18)),
            "{names:?}"
        );
        assert!(
            names.contains(&(RefKind::Channel, "slack", 20)),
            "{names:?}"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_line_of_the_problem() {
        for (text, line, needle) in [
            ("schedules:\n  - name: a\n    time_zone: Europe/Berlin\n    layers: []\n", 3, "not supported yet"),
            ("schedules:\n  - name: a\n    layers:\n      - start: 2026-01-05\n        shift: 1d\n        users: [x]\n", 4, "RFC 3339"),
            ("schedules:\n  - name: a\n    layers:\n      - start: 2026-01-05T00:00:00Z\n        shift: 1 day\n        users: [x]\n", 5, "shift"),
            ("schedules:\n  - name: a\n    layers:\n      - start: 2026-01-05T00:00:00Z\n        shift: 1d\n        users: []\n", 6, "at least one user"),
            ("schedules:\n  - name: a\n    rotation: x\n", 3, "field rotation not found"),
            ("schedules:\n  - name: a\n", 2, "no layers and no overrides"),
            ("escalation_policies:\n  - name: p\n    levels:\n      - after: 10m\n        targets: [{user: a}]\n      - after: 5m\n        targets: [{user: b}]\n", 6, "in order"),
            ("escalation_policies:\n  - name: p\n    levels:\n      - targets: [{user: a, channel: b}]\n", 4, "exactly one of"),
            ("escalation_policies:\n  - name: p\n    levels: []\n", 3, "at least one level"),
            ("schedules:\n  - name: a\n    overrides:\n      - {user: x, from: 2026-01-05T00:00:00Z, to: 2026-01-04T00:00:00Z}\n", 4, "end after"),
            ("schedules:\n  - name: a\n    layers:\n      - start: 2026-01-05T00:00:00Z\n        shift: 1d\n        users: [x]\n        restrict: {hours: \"9-17\"}\n", 7, "hours"),
            ("", 1, "empty"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e[0].pos.line, line, "{text:?}: {e:?}");
            assert!(e[0].message.contains(needle), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn names_defined_twice_are_refused() {
        let e = parse("schedules:\n  - name: a\n    overrides: [{user: x, from: 2026-01-05T00:00:00Z, to: 2026-01-06T00:00:00Z}]\n  - name: a\n    overrides: [{user: x, from: 2026-01-05T00:00:00Z, to: 2026-01-06T00:00:00Z}]\n").unwrap_err();
        assert_eq!(e[0].pos.line, 4);
        assert!(e[0].message.contains("defined twice"), "{e:?}");
    }
}
