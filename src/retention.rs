//! Retention policies: which snapshots `forget` keeps and which it removes.
//!
//! [`plan`] is a pure function of a [`Policy`], the snapshots, the current
//! time and a time zone; it follows restic's documented `forget` semantics:
//!
//! - Snapshots are divided into groups ([`GroupBy`], default host + paths)
//!   and the policy is applied to each group on its own.
//! - Within a group, snapshots are walked newest first. Each counted rule
//!   (`last`, `hourly`, `daily`, `weekly`, `monthly`, `yearly`) keeps a
//!   snapshot when it falls into a different bucket from the last snapshot
//!   that rule kept, until the rule has kept N snapshots; so each rule keeps
//!   the newest snapshot of each of its N most recent non-empty buckets.
//!   Buckets are local calendar time in the given zone: hour, day, ISO 8601
//!   week (`weekly`), month, year. `last` puts every snapshot in a bucket of
//!   its own.
//! - If a counted rule still has count left when the walk reaches the
//!   oldest snapshot of the group, that snapshot is kept as well (reason
//!   `oldest-<rule>`), as restic ≥ 0.17 does, so a young history is not
//!   thinned out before the rule is satisfied.
//! - `within` keeps every snapshot newer than the group's latest snapshot
//!   (ignoring snapshots in the future of `now`) minus the duration; years,
//!   months and days are calendar arithmetic, hours are absolute.
//! - `keep_tags` keeps every snapshot carrying all tags of one entry.
//! - A snapshot is kept if any rule keeps it; its reasons list every rule
//!   that did.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::model::{Snapshot, decode_versioned, encode_versioned};

/// Version byte of an encoded [`Policy`]. 1: first format.
pub const POLICY_VERSION: u8 = 1;

/// A calendar duration such as `1y2m3d4h` (restic's `--keep-within` format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Within {
    /// Calendar years.
    pub years: u32,
    /// Calendar months.
    pub months: u32,
    /// Calendar days.
    pub days: u32,
    /// Hours (absolute time).
    pub hours: u32,
}

impl Within {
    /// Parses `1y2m3d4h`: one or more numbers, each followed by one of
    /// `y`, `m`, `d`, `h`, in any order (a repeated unit adds up).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid duration `{s}`: {why} (expected e.g. 7d, 12h, 1y6m, 1y2m3d4h)"
            ))
        };
        let mut out = Self::default();
        let mut num = String::new();
        let mut any = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if num.is_empty() {
                return Err(bad("a unit must follow a number"));
            }
            let n: u32 = num.parse().map_err(|_| bad("number too large"))?;
            num.clear();
            let slot = match c {
                'y' => &mut out.years,
                'm' => &mut out.months,
                'd' => &mut out.days,
                'h' => &mut out.hours,
                _ => return Err(bad(&format!("unknown unit `{c}`"))),
            };
            *slot = slot.checked_add(n).ok_or_else(|| bad("number too large"))?;
            any = true;
        }
        if !num.is_empty() {
            return Err(bad("the last number has no unit"));
        }
        if !any {
            return Err(bad("empty"));
        }
        Ok(out)
    }

    /// Whether every component is zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// `latest` minus this duration: years, months and days as on a
    /// calendar in `latest`'s zone (an overflowing day rolls over into the
    /// next month, as Go's `AddDate` does), then hours as absolute time.
    fn subtract_from(&self, latest: &Zoned) -> Option<Timestamp> {
        let months_total = i64::from(latest.year()) * 12 + i64::from(latest.month())
            - 1
            - i64::from(self.years) * 12
            - i64::from(self.months);
        let year = i16::try_from(months_total.div_euclid(12)).ok()?;
        let month = i8::try_from(months_total.rem_euclid(12) + 1).ok()?;
        let first = Date::new(year, month, 1).ok()?;
        let days = i64::from(latest.day()) - 1 - i64::from(self.days);
        let date = first.checked_add(jiff::Span::new().days(days)).ok()?;
        let dt = DateTime::from_parts(date, latest.time());
        let z = latest
            .time_zone()
            .to_ambiguous_zoned(dt)
            .compatible()
            .ok()?;
        z.timestamp()
            .checked_sub(SignedDuration::from_hours(i64::from(self.hours)))
            .ok()
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        for (n, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{u}")?;
            }
        }
        Ok(())
    }
}

/// Which snapshot fields form a group that the policy applies to separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the (sorted) set of source paths.
    pub paths: bool,
    /// Group by the (sorted) set of tags.
    pub tags: bool,
}

impl Default for GroupBy {
    /// restic's default: host and paths.
    fn default() -> Self {
        Self {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl GroupBy {
    /// Parses `host,paths,tags` (any subset, comma-separated; empty for one
    /// group holding every snapshot).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an unknown field.
    pub fn parse(s: &str) -> Result<Self> {
        let mut g = Self {
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" | "path" => g.paths = true,
                "tags" | "tag" => g.tags = true,
                other => {
                    return Err(Error::invalid(format!(
                        "unknown --group-by field `{other}` (expected host, paths and/or tags)"
                    )));
                }
            }
        }
        Ok(g)
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.host {
            parts.push("host");
        }
        if self.paths {
            parts.push("paths");
        }
        if self.tags {
            parts.push("tags");
        }
        f.write_str(&parts.join(","))
    }
}

/// A retention policy. A zero count disables its rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Keep the N newest snapshots.
    pub last: u32,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    pub hourly: u32,
    /// Same, per local calendar day.
    pub daily: u32,
    /// Same, per ISO 8601 week.
    pub weekly: u32,
    /// Same, per calendar month.
    pub monthly: u32,
    /// Same, per calendar year.
    pub yearly: u32,
    /// Keep everything newer than the latest snapshot minus this.
    pub within: Option<Within>,
    /// Keep snapshots carrying every tag of any one entry.
    pub keep_tags: Vec<Vec<String>>,
    /// How snapshots are grouped.
    pub group_by: GroupBy,
}

impl Policy {
    /// Whether no rule keeps anything (every snapshot would be removed).
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none_or(|w| w.is_zero())
            && self.keep_tags.is_empty()
    }

    /// `[version] ++ postcard(self)`, as stored in the catalog.
    ///
    /// # Errors
    /// Encoding errors.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_versioned(POLICY_VERSION, self)
    }

    /// Decodes [`Policy::encode`]'s output.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Corrupt`] or [`crate::ErrorKind::UnsupportedVersion`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode_versioned(POLICY_VERSION, "retention policy", bytes)
    }
}

impl fmt::Display for Policy {
    /// A one-line description: `keep 7 daily, 4 weekly; all within 2d of the
    /// newest; all tagged important; per host,paths`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let counts: Vec<String> = [
            (self.last, "last"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ]
        .iter()
        .filter(|(n, _)| *n != 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
        if !counts.is_empty() {
            parts.push(format!("keep {}", counts.join(", ")));
        }
        if let Some(w) = self.within.filter(|w| !w.is_zero()) {
            parts.push(format!("keep all within {w} of the newest"));
        }
        for t in &self.keep_tags {
            parts.push(format!("keep all tagged {}", t.join(",")));
        }
        if parts.is_empty() {
            parts.push("keep nothing".into());
        }
        let group = self.group_by.to_string();
        parts.push(if group.is_empty() {
            "one group".into()
        } else {
            format!("per {group}")
        });
        f.write_str(&parts.join("; "))
    }
}

/// A calendar bucket kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    /// Local hour.
    Hourly,
    /// Local calendar day.
    Daily,
    /// ISO 8601 week (Monday to Sunday; week 1 holds the year's first Thursday).
    Weekly,
    /// Calendar month.
    Monthly,
    /// Calendar year.
    Yearly,
}

impl Period {
    fn name(self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    /// The bucket `z` falls in, as a number like restic's (`YYYYMMDDHH`, …).
    fn bucket(self, z: &Zoned) -> i64 {
        let (y, m, d, h) = (
            i64::from(z.year()),
            i64::from(z.month()),
            i64::from(z.day()),
            i64::from(z.hour()),
        );
        match self {
            Self::Hourly => ((y * 100 + m) * 100 + d) * 100 + h,
            Self::Daily => (y * 100 + m) * 100 + d,
            Self::Weekly => {
                let w = z.date().iso_week_date();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Self::Monthly => y * 100 + m,
            Self::Yearly => y,
        }
    }
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// One of the N newest (`--keep-last`).
    Last,
    /// The newest snapshot of its bucket.
    Period(Period),
    /// The group's oldest snapshot, kept because this rule had count left.
    Oldest(Period),
    /// Newer than the latest snapshot minus `--keep-within`.
    Within,
    /// Carries these tags (`--keep-tag`).
    Tag(Vec<String>),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Last => f.write_str("last"),
            Self::Period(p) => f.write_str(p.name()),
            Self::Oldest(p) => write!(f, "oldest-{}", p.name()),
            Self::Within => f.write_str("within"),
            Self::Tag(t) => write!(f, "tag:{}", t.join(",")),
        }
    }
}

/// What happens to one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its time (ns since the epoch).
    pub time_ns: i64,
    /// Whether it is kept.
    pub keep: bool,
    /// Every rule that keeps it (empty when removed).
    pub reasons: Vec<Reason>,
}

/// The fields a group is identified by (`None` when not grouped by it).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    /// Host name.
    pub host: Option<String>,
    /// Sorted source paths.
    pub paths: Option<Vec<Vec<u8>>>,
    /// Sorted tags.
    pub tags: Option<Vec<String>>,
}

/// The decisions for one group, newest snapshot first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    /// What the group's snapshots share.
    pub key: GroupKey,
    /// One decision per snapshot, newest first.
    pub decisions: Vec<Decision>,
}

impl GroupPlan {
    /// Whether every snapshot of the group would be removed.
    pub fn removes_all(&self) -> bool {
        !self.decisions.is_empty() && self.decisions.iter().all(|d| !d.keep)
    }
}

/// The outcome of applying a policy: groups in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    /// One entry per group.
    pub groups: Vec<GroupPlan>,
}

impl RetentionPlan {
    /// The ids of the snapshots to remove.
    pub fn removals(&self) -> Vec<SnapshotId> {
        self.decisions().filter(|d| !d.keep).map(|d| d.id).collect()
    }

    /// Every decision, group by group, newest first within a group.
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.groups.iter().flat_map(|g| g.decisions.iter())
    }

    /// The groups whose every snapshot would be removed.
    pub fn emptied_groups(&self) -> impl Iterator<Item = &GroupPlan> {
        self.groups.iter().filter(|g| g.removes_all())
    }
}

fn group_key(by: GroupBy, s: &Snapshot) -> GroupKey {
    GroupKey {
        host: by.host.then(|| s.host.clone()),
        paths: by.paths.then(|| {
            let mut p = s.paths.clone();
            p.sort();
            p.dedup();
            p
        }),
        tags: by.tags.then(|| {
            let mut t = s.tags.clone();
            t.sort();
            t.dedup();
            t
        }),
    }
}

fn zoned(time_ns: i64, tz: &TimeZone) -> Result<Zoned> {
    Timestamp::from_nanosecond(i128::from(time_ns))
        .map(|t| t.to_zoned(tz.clone()))
        .map_err(|e| Error::invalid(format!("snapshot time {time_ns} ns is out of range: {e}")))
}

/// Applies `policy` to `snapshots` (any order) at time `now`, with calendar
/// buckets in `tz`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] when a snapshot time cannot be
/// represented as a calendar time.
pub fn plan(
    policy: &Policy,
    snapshots: &[(SnapshotId, Snapshot)],
    now: Timestamp,
    tz: &TimeZone,
) -> Result<RetentionPlan> {
    let mut groups: BTreeMap<GroupKey, Vec<(SnapshotId, i64, &Snapshot)>> = BTreeMap::new();
    for (id, s) in snapshots {
        groups
            .entry(group_key(policy.group_by, s))
            .or_default()
            .push((*id, s.time_ns, s));
    }
    let mut out = RetentionPlan::default();
    for (key, mut list) in groups {
        // Newest first; ties broken by id so the result is deterministic.
        list.sort_by_key(|e| std::cmp::Reverse((e.1, e.0)));
        out.groups.push(GroupPlan {
            key,
            decisions: plan_group(policy, &list, now, tz)?,
        });
    }
    Ok(out)
}

fn plan_group(
    policy: &Policy,
    list: &[(SnapshotId, i64, &Snapshot)],
    now: Timestamp,
    tz: &TimeZone,
) -> Result<Vec<Decision>> {
    let Some(newest) = list.first() else {
        return Ok(Vec::new());
    };
    let now_ns = i64::try_from(now.as_nanosecond()).unwrap_or(i64::MAX);
    // restic: the latest snapshot that is not in the future.
    let latest_ns = list
        .iter()
        .map(|e| e.1)
        .find(|t| *t <= now_ns)
        .unwrap_or(newest.1);
    let within_cutoff = match policy.within.filter(|w| !w.is_zero()) {
        Some(w) => Some(
            w.subtract_from(&zoned(latest_ns, tz)?)
                .map_or(i128::MIN, |t| t.as_nanosecond()),
        ),
        None => None,
    };

    struct Counter {
        period: Option<Period>,
        left: u32,
        last: Option<i64>,
    }
    let mut counters: Vec<Counter> = [
        (None, policy.last),
        (Some(Period::Hourly), policy.hourly),
        (Some(Period::Daily), policy.daily),
        (Some(Period::Weekly), policy.weekly),
        (Some(Period::Monthly), policy.monthly),
        (Some(Period::Yearly), policy.yearly),
    ]
    .into_iter()
    .map(|(period, left)| Counter {
        period,
        left,
        last: None,
    })
    .collect();

    let mut decisions = Vec::with_capacity(list.len());
    for (nr, (id, time_ns, snap)) in list.iter().enumerate() {
        let z = zoned(*time_ns, tz)?;
        let oldest = nr + 1 == list.len();
        let mut reasons = Vec::new();
        for c in &mut counters {
            if c.left == 0 {
                continue;
            }
            // `last` gives every snapshot a bucket of its own.
            let bucket = c.period.map_or(nr as i64, |p| p.bucket(&z));
            let new_bucket = c.last != Some(bucket);
            if new_bucket || oldest {
                c.last = Some(bucket);
                c.left -= 1;
                reasons.push(match (c.period, new_bucket) {
                    (None, _) => Reason::Last,
                    (Some(p), true) => Reason::Period(p),
                    (Some(p), false) => Reason::Oldest(p),
                });
            }
        }
        if within_cutoff.is_some_and(|cut| i128::from(*time_ns) > cut) {
            reasons.push(Reason::Within);
        }
        for tags in &policy.keep_tags {
            if !tags.is_empty() && tags.iter().all(|t| snap.tags.contains(t)) {
                reasons.push(Reason::Tag(tags.clone()));
            }
        }
        decisions.push(Decision {
            id: *id,
            time_ns: *time_ns,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    Ok(decisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_parses_restic_durations() {
        let w = Within::parse("1y2m3d4h").unwrap();
        assert_eq!(
            w,
            Within {
                years: 1,
                months: 2,
                days: 3,
                hours: 4
            }
        );
        assert_eq!(w.to_string(), "1y2m3d4h");
        assert_eq!(Within::parse("7d").unwrap().to_string(), "7d");
        assert_eq!(Within::parse("36h").unwrap().hours, 36);
        for bad in ["", "7", "d", "7w", "1.5d", "-1d", "7 d"] {
            assert!(Within::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn group_by_parses_and_displays() {
        assert_eq!(GroupBy::parse("host,paths").unwrap(), GroupBy::default());
        assert_eq!(GroupBy::parse("tags").unwrap().to_string(), "tags");
        assert_eq!(GroupBy::parse("").unwrap().to_string(), "");
        assert!(GroupBy::parse("user").is_err());
    }

    #[test]
    fn policy_round_trips_and_knows_emptiness() {
        let p = Policy {
            daily: 7,
            within: Some(Within::parse("2d").unwrap()),
            keep_tags: vec![vec!["a".into(), "b".into()]],
            ..Policy::default()
        };
        assert_eq!(Policy::decode(&p.encode().unwrap()).unwrap(), p);
        assert!(!p.is_empty());
        assert!(Policy::default().is_empty());
        assert_eq!(
            p.to_string(),
            "keep 7 daily; keep all within 2d of the newest; keep all tagged a,b; per host,paths"
        );
    }
}
