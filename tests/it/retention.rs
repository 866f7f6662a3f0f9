//! Retention: table tests of the pure policy function against hand-worked
//! cases (DST changes, ISO week edges, leap days, keep-within arithmetic,
//! tags, groups), then `cairn forget` / `cairn policy` end to end.

use std::collections::BTreeSet;
use std::path::Path;

use cairn::model::{Snapshot, SnapshotSummary};
use cairn::retention::{self, GroupBy, Policy, RetentionPlan, Within};
use cairn::{SnapshotId, TreeId};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::support::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A zone by name, as POSIX TZ rules so the tests need no tzdb on the
/// machine: the rules give the same transitions as the IANA zones for the
/// years tested (EU and US rules unchanged since 2007).
fn tz(name: &str) -> TimeZone {
    let rule = match name {
        "Europe/Berlin" => "CET-1CEST,M3.5.0,M10.5.0/3",
        "America/New_York" => "EST5EDT,M3.2.0,M11.1.0",
        other => panic!("no POSIX rule for {other}"),
    };
    TimeZone::posix(rule).unwrap_or_else(|e| panic!("time zone {name}: {e}"))
}

fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("{s} is not an RFC 3339 time: {e}"))
}

fn snapshot(n: usize, time: Timestamp, host: &str, tags: &[&str]) -> (SnapshotId, Snapshot) {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(n as u64).to_be_bytes());
    let snap = Snapshot {
        time_ns: i64::try_from(time.as_nanosecond()).unwrap(),
        tree: TreeId::from([0; 32]),
        paths: vec![b"/data".to_vec()],
        host: host.into(),
        username: "u".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        message: String::new(),
        parent: None,
        summary: SnapshotSummary::default(),
        program_version: "test".into(),
    };
    (SnapshotId::from(id), snap)
}

fn snaps(times: &[&str]) -> Vec<(SnapshotId, Snapshot)> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| snapshot(i, ts(t), "h", &[]))
        .collect()
}

/// Far enough in the future that no test snapshot is "in the future".
fn later() -> Timestamp {
    ts("2100-01-01T00:00:00Z")
}

/// Each snapshot of the plan, newest first: its local time in `zone`
/// (`%Y-%m-%dT%H:%M%:z`) and its reasons joined by `,`, or `-` when removed.
fn outcome(plan: &RetentionPlan, zone: &TimeZone) -> Vec<(String, String)> {
    plan.decisions()
        .map(|d| {
            let t = Timestamp::from_nanosecond(i128::from(d.time_ns))
                .unwrap()
                .to_zoned(zone.clone())
                .strftime("%Y-%m-%dT%H:%M%:z")
                .to_string();
            let r: Vec<String> = d.reasons.iter().map(ToString::to_string).collect();
            assert_eq!(d.keep, !r.is_empty());
            (
                t,
                if r.is_empty() {
                    "-".into()
                } else {
                    r.join(",")
                },
            )
        })
        .collect()
}

fn apply(policy: &Policy, times: &[&str], zone: &TimeZone) -> Vec<(String, String)> {
    let plan = retention::plan(policy, &snaps(times), later(), zone).unwrap();
    outcome(&plan, zone)
}

fn expect(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Counted rules
// ---------------------------------------------------------------------------

#[test]
fn keep_last_keeps_the_newest_n() {
    let utc = TimeZone::UTC;
    let times = [
        "2025-01-01T10:00:00Z",
        "2025-01-01T10:00:00Z", // same instant, other id: still its own bucket
        "2025-01-02T10:00:00Z",
        "2025-01-03T10:00:00Z",
        "2025-01-04T10:00:00Z",
    ];
    let p = Policy {
        last: 3,
        ..Policy::default()
    };
    assert_eq!(
        apply(&p, &times, &utc),
        expect(&[
            ("2025-01-04T10:00+00:00", "last"),
            ("2025-01-03T10:00+00:00", "last"),
            ("2025-01-02T10:00+00:00", "last"),
            ("2025-01-01T10:00+00:00", "-"),
            ("2025-01-01T10:00+00:00", "-"),
        ])
    );
    // More than there are: everything, each for being one of the last.
    let p = Policy {
        last: 10,
        ..Policy::default()
    };
    assert!(apply(&p, &times, &utc).iter().all(|(_, r)| r == "last"));
}

#[test]
fn daily_keeps_the_newest_of_each_day_and_the_oldest_while_count_is_left() {
    let utc = TimeZone::UTC;
    let times = [
        "2024-01-01T10:00:00Z",
        "2024-01-01T20:00:00Z",
        "2024-01-02T09:00:00Z",
        "2024-01-04T09:00:00Z",
        "2024-01-04T23:00:00Z",
    ];
    let two = Policy {
        daily: 2,
        ..Policy::default()
    };
    assert_eq!(
        apply(&two, &times, &utc),
        expect(&[
            ("2024-01-04T23:00+00:00", "daily"),
            ("2024-01-04T09:00+00:00", "-"),
            ("2024-01-02T09:00+00:00", "daily"),
            ("2024-01-01T20:00+00:00", "-"),
            ("2024-01-01T10:00+00:00", "-"),
        ])
    );
    // Five days asked, three exist: the group's oldest snapshot is kept
    // too (restic >= 0.17), though its day already has a kept snapshot.
    let five = Policy {
        daily: 5,
        ..Policy::default()
    };
    assert_eq!(
        apply(&five, &times, &utc),
        expect(&[
            ("2024-01-04T23:00+00:00", "daily"),
            ("2024-01-04T09:00+00:00", "-"),
            ("2024-01-02T09:00+00:00", "daily"),
            ("2024-01-01T20:00+00:00", "daily"),
            ("2024-01-01T10:00+00:00", "oldest-daily"),
        ])
    );
}

// ---------------------------------------------------------------------------
// Daylight saving time (Europe/Berlin)
// ---------------------------------------------------------------------------

#[test]
fn dst_fall_back_the_repeated_hour_is_one_bucket() {
    // 2025-10-26: 03:00 CEST (+02:00) becomes 02:00 CET (+01:00), so 02:xx
    // happens twice. Local hour 02 is one bucket, whichever offset.
    let berlin = tz("Europe/Berlin");
    let times = [
        "2025-10-26T01:30:00+02:00",
        "2025-10-26T02:10:00+02:00",
        "2025-10-26T02:50:00+02:00",
        "2025-10-26T02:40:00+01:00", // after 02:50+02:00 in absolute time
        "2025-10-26T03:20:00+01:00",
    ];
    let p = Policy {
        hourly: 3,
        daily: 1,
        ..Policy::default()
    };
    assert_eq!(
        apply(&p, &times, &berlin),
        expect(&[
            ("2025-10-26T03:20+01:00", "hourly,daily"),
            ("2025-10-26T02:40+01:00", "hourly"),
            ("2025-10-26T02:50+02:00", "-"),
            ("2025-10-26T02:10+02:00", "-"),
            ("2025-10-26T01:30+02:00", "hourly"),
        ])
    );
    // The same instants bucketed in UTC give different answers: proof
    // that the zone is used (00:50Z and 00:10Z are another hour there,
    // and 23:30Z falls on the 25th).
    let utc = TimeZone::UTC;
    assert_eq!(
        apply(&p, &times, &utc),
        expect(&[
            ("2025-10-26T02:20+00:00", "hourly,daily"),
            ("2025-10-26T01:40+00:00", "hourly"),
            ("2025-10-26T00:50+00:00", "hourly"),
            ("2025-10-26T00:10+00:00", "-"),
            ("2025-10-25T23:30+00:00", "-"),
        ])
    );
}

#[test]
fn dst_spring_forward_and_local_midnight() {
    // 2025-03-30: 02:00 CET becomes 03:00 CEST; local hour 02 never exists.
    let berlin = tz("Europe/Berlin");
    let times = [
        "2025-03-29T23:30:00+01:00", // 22:30Z on the 29th
        "2025-03-30T00:30:00+01:00", // 23:30Z on the 29th, local the 30th
        "2025-03-30T01:59:00+01:00",
        "2025-03-30T03:00:00+02:00", // one minute later
        "2025-03-30T03:59:00+02:00",
    ];
    let p = Policy {
        hourly: 3,
        daily: 2,
        ..Policy::default()
    };
    assert_eq!(
        apply(&p, &times, &berlin),
        expect(&[
            ("2025-03-30T03:59+02:00", "hourly,daily"),
            ("2025-03-30T03:00+02:00", "-"),
            ("2025-03-30T01:59+01:00", "hourly"),
            ("2025-03-30T00:30+01:00", "hourly"),
            ("2025-03-29T23:30+01:00", "daily"),
        ])
    );
    // In UTC both first snapshots are on the 29th, so daily keeps the later.
    let utc_days: Vec<String> = apply(
        &Policy {
            daily: 2,
            ..Policy::default()
        },
        &times,
        &TimeZone::UTC,
    )
    .into_iter()
    .map(|(t, r)| format!("{t} {r}"))
    .collect();
    assert_eq!(
        utc_days,
        [
            "2025-03-30T01:59+00:00 daily",
            "2025-03-30T01:00+00:00 -",
            "2025-03-30T00:59+00:00 -",
            "2025-03-29T23:30+00:00 daily",
            "2025-03-29T22:30+00:00 -",
        ]
    );
}

// ---------------------------------------------------------------------------
// ISO weeks and leap days
// ---------------------------------------------------------------------------

#[test]
fn weekly_uses_iso_weeks_across_new_year() {
    let utc = TimeZone::UTC;
    // 2020 has 53 ISO weeks: Mon 2020-12-28 .. Sun 2021-01-03 is 2020-W53;
    // 2021-W01 starts Mon 2021-01-04.
    let times = [
        "2020-12-28T12:00:00Z",
        "2020-12-31T12:00:00Z",
        "2021-01-03T12:00:00Z",
        "2021-01-04T12:00:00Z",
        "2021-01-10T12:00:00Z",
        "2021-01-11T12:00:00Z",
    ];
    let p = Policy {
        weekly: 3,
        ..Policy::default()
    };
    assert_eq!(
        apply(&p, &times, &utc),
        expect(&[
            ("2021-01-11T12:00+00:00", "weekly"), // 2021-W02
            ("2021-01-10T12:00+00:00", "weekly"), // 2021-W01
            ("2021-01-04T12:00+00:00", "-"),
            ("2021-01-03T12:00+00:00", "weekly"), // 2020-W53
            ("2020-12-31T12:00+00:00", "-"),
            ("2020-12-28T12:00+00:00", "-"),
        ])
    );
    // Mon 2024-12-30 is in 2025-W01 but in calendar year 2024.
    let times = [
        "2024-12-29T12:00:00Z", // Sun, 2024-W52
        "2024-12-30T12:00:00Z", // Mon, 2025-W01
        "2025-01-05T12:00:00Z", // Sun, 2025-W01
        "2025-01-06T12:00:00Z", // Mon, 2025-W02
    ];
    let p = Policy {
        weekly: 3,
        yearly: 2,
        ..Policy::default()
    };
    assert_eq!(
        apply(&p, &times, &utc),
        expect(&[
            ("2025-01-06T12:00+00:00", "weekly,yearly"),
            ("2025-01-05T12:00+00:00", "weekly"),
            ("2024-12-30T12:00+00:00", "yearly"),
            ("2024-12-29T12:00+00:00", "weekly"),
        ])
    );
}

#[test]
fn leap_day_is_its_own_day_in_february() {
    let utc = TimeZone::UTC;
    let times = [
        "2023-02-28T12:00:00Z",
        "2023-03-01T12:00:00Z",
        "2024-02-28T12:00:00Z",
        "2024-02-29T12:00:00Z",
        "2024-03-01T12:00:00Z",
    ];
    let p = Policy {
        daily: 3,
        monthly: 3,
        ..Policy::default()
    };
    assert_eq!(
        apply(&p, &times, &utc),
        expect(&[
            ("2024-03-01T12:00+00:00", "daily,monthly"),
            ("2024-02-29T12:00+00:00", "daily,monthly"),
            ("2024-02-28T12:00+00:00", "daily"),
            ("2023-03-01T12:00+00:00", "monthly"),
            ("2023-02-28T12:00+00:00", "-"),
        ])
    );
}

// ---------------------------------------------------------------------------
// keep-within
// ---------------------------------------------------------------------------

fn within(s: &str) -> Policy {
    Policy {
        within: Some(Within::parse(s).unwrap()),
        ..Policy::default()
    }
}

#[test]
fn keep_within_counts_back_from_the_latest_snapshot_not_now() {
    let utc = TimeZone::UTC;
    let list = snaps(&[
        "2025-01-01T12:00:00Z",
        "2025-01-04T12:00:00Z", // exactly 5d before the latest: not newer
        "2025-01-04T12:00:01Z",
        "2025-01-09T12:00:00Z",
        "2030-01-01T00:00:00Z", // in the future of `now`: not "the latest"
    ]);
    // Years after the snapshots: measuring from now would remove them all.
    let now = ts("2025-06-01T00:00:00Z");
    let plan = retention::plan(&within("5d"), &list, now, &utc).unwrap();
    assert_eq!(
        outcome(&plan, &utc),
        expect(&[
            ("2030-01-01T00:00+00:00", "within"),
            ("2025-01-09T12:00+00:00", "within"),
            ("2025-01-04T12:00+00:00", "within"),
            ("2025-01-04T12:00+00:00", "-"),
            ("2025-01-01T12:00+00:00", "-"),
        ])
    );
    // Days and hours combine: 1d12h before 2025-01-09T12:00 is 01-08T00:00.
    let list = snaps(&[
        "2025-01-08T00:00:00Z",
        "2025-01-08T00:00:01Z",
        "2025-01-09T12:00:00Z",
    ]);
    let plan = retention::plan(&within("1d12h"), &list, later(), &utc).unwrap();
    assert_eq!(
        outcome(&plan, &utc),
        expect(&[
            ("2025-01-09T12:00+00:00", "within"),
            ("2025-01-08T00:00+00:00", "within"),
            ("2025-01-08T00:00+00:00", "-"),
        ])
    );
}

#[test]
fn keep_within_months_and_years_are_calendar_arithmetic() {
    let utc = TimeZone::UTC;
    // 1m before 2024-03-01 is 2024-02-01 (29 days, leap year).
    assert_eq!(
        apply(
            &within("1m"),
            &[
                "2024-01-31T12:00:00Z",
                "2024-02-01T12:00:01Z",
                "2024-03-01T12:00:00Z"
            ],
            &utc
        ),
        expect(&[
            ("2024-03-01T12:00+00:00", "within"),
            ("2024-02-01T12:00+00:00", "within"),
            ("2024-01-31T12:00+00:00", "-"),
        ])
    );
    // 1y before 2024-02-29 is "2023-02-29", which rolls over to 2023-03-01
    // (restic uses Go's AddDate): 2023-03-01T12:00 itself is not newer.
    assert_eq!(
        apply(
            &within("1y"),
            &[
                "2023-02-28T12:00:00Z",
                "2023-03-01T12:00:00Z",
                "2023-03-01T13:00:00Z",
                "2024-02-29T12:00:00Z"
            ],
            &utc
        ),
        expect(&[
            ("2024-02-29T12:00+00:00", "within"),
            ("2023-03-01T13:00+00:00", "within"),
            ("2023-03-01T12:00+00:00", "-"),
            ("2023-02-28T12:00+00:00", "-"),
        ])
    );
    // Calendar days in local time: 1d before 2025-03-30T12:00 CEST is
    // 2025-03-29T12:00 CET, 23 hours earlier.
    let berlin = tz("Europe/Berlin");
    assert_eq!(
        apply(
            &within("1d"),
            &[
                "2025-03-29T12:00:00+01:00",
                "2025-03-29T12:30:00+01:00",
                "2025-03-30T12:00:00+02:00"
            ],
            &berlin
        ),
        expect(&[
            ("2025-03-30T12:00+02:00", "within"),
            ("2025-03-29T12:30+01:00", "within"),
            ("2025-03-29T12:00+01:00", "-"),
        ])
    );
}

// ---------------------------------------------------------------------------
// Tags, combinations, groups
// ---------------------------------------------------------------------------

#[test]
fn keep_tag_keeps_tagged_snapshots_with_every_reason_listed() {
    let utc = TimeZone::UTC;
    let list = vec![
        snapshot(0, ts("2025-01-01T00:00:00Z"), "h", &["important"]),
        snapshot(1, ts("2025-01-02T00:00:00Z"), "h", &["a"]),
        snapshot(2, ts("2025-01-03T00:00:00Z"), "h", &["a", "b"]),
        snapshot(3, ts("2025-01-04T00:00:00Z"), "h", &[]),
        snapshot(4, ts("2025-01-05T00:00:00Z"), "h", &["important"]),
    ];
    let p = Policy {
        last: 1,
        keep_tags: vec![vec!["important".into()], vec!["a".into(), "b".into()]],
        ..Policy::default()
    };
    let plan = retention::plan(&p, &list, later(), &utc).unwrap();
    assert_eq!(
        outcome(&plan, &utc),
        expect(&[
            ("2025-01-05T00:00+00:00", "last,tag:important"),
            ("2025-01-04T00:00+00:00", "-"),
            ("2025-01-03T00:00+00:00", "tag:a,b"),
            ("2025-01-02T00:00+00:00", "-"),
            ("2025-01-01T00:00+00:00", "tag:important"),
        ])
    );
}

/// Three years of one snapshot a day at 00:30 Berlin time (22:30 or 23:30
/// UTC the day before), with a typical policy: hand-worked result.
#[test]
fn three_years_of_daily_snapshots_with_a_combined_policy() {
    let berlin = tz("Europe/Berlin");
    let mut day = jiff::civil::date(2023, 1, 1);
    let mut list = Vec::new();
    while day <= jiff::civil::date(2025, 12, 31) {
        let z = day.at(0, 30, 0, 0).to_zoned(berlin.clone()).unwrap();
        list.push(snapshot(list.len(), z.timestamp(), "h", &[]));
        day = day.checked_add(1.day()).unwrap();
    }
    assert_eq!(list.len(), 365 * 3 + 1); // 2024 is a leap year
    let mut p = Policy {
        daily: 7,
        weekly: 4,
        monthly: 12,
        yearly: 3,
        ..Policy::default()
    };
    let kept = |p: &Policy| -> Vec<(String, String)> {
        let plan = retention::plan(p, &list, later(), &berlin).unwrap();
        assert!(plan.groups.len() == 1 && plan.emptied_groups().next().is_none());
        outcome(&plan, &berlin)
            .into_iter()
            .filter(|(_, r)| r != "-")
            .map(|(t, r)| (t[..10].to_string(), r))
            .collect()
    };
    // 2025-12-31 is a Wednesday in 2026-W01 (Mon 2025-12-29).
    let mut expected = expect(&[
        ("2025-12-31", "daily,weekly,monthly,yearly"),
        ("2025-12-30", "daily"),
        ("2025-12-29", "daily"),
        ("2025-12-28", "daily,weekly"), // Sunday of 2025-W52
        ("2025-12-27", "daily"),
        ("2025-12-26", "daily"),
        ("2025-12-25", "daily"),
        ("2025-12-21", "weekly"),
        ("2025-12-14", "weekly"),
        ("2025-11-30", "monthly"),
        ("2025-10-31", "monthly"),
        ("2025-09-30", "monthly"),
        ("2025-08-31", "monthly"),
        ("2025-07-31", "monthly"),
        ("2025-06-30", "monthly"),
        ("2025-05-31", "monthly"),
        ("2025-04-30", "monthly"),
        ("2025-03-31", "monthly"),
        ("2025-02-28", "monthly"),
        ("2025-01-31", "monthly"),
        ("2024-12-31", "yearly"),
        ("2023-12-31", "yearly"),
    ]);
    assert_eq!(kept(&p), expected);
    // Five years asked, three exist: the oldest snapshot is kept as well.
    p.yearly = 5;
    expected.push(("2023-01-01".into(), "oldest-yearly".into()));
    assert_eq!(kept(&p), expected);
}

#[test]
fn groups_are_planned_separately_and_emptied_groups_are_reported() {
    let utc = TimeZone::UTC;
    let list = vec![
        snapshot(0, ts("2025-01-01T00:00:00Z"), "alpha", &[]),
        snapshot(1, ts("2025-01-02T00:00:00Z"), "alpha", &["keep"]),
        snapshot(2, ts("2025-01-03T00:00:00Z"), "beta", &[]),
        snapshot(3, ts("2025-01-04T00:00:00Z"), "beta", &[]),
    ];
    let last1 = Policy {
        last: 1,
        ..Policy::default()
    };
    let plan = retention::plan(&last1, &list, later(), &utc).unwrap();
    assert_eq!(plan.groups.len(), 2);
    assert_eq!(plan.groups[0].key.host.as_deref(), Some("alpha"));
    assert_eq!(
        plan.groups[0].key.paths.as_deref(),
        Some(&[b"/data".to_vec()][..])
    );
    assert_eq!(
        outcome(&plan, &utc),
        expect(&[
            ("2025-01-02T00:00+00:00", "last"),
            ("2025-01-01T00:00+00:00", "-"),
            ("2025-01-04T00:00+00:00", "last"),
            ("2025-01-03T00:00+00:00", "-"),
        ])
    );
    // One group for everything.
    let one = Policy {
        group_by: GroupBy::parse("").unwrap(),
        ..last1.clone()
    };
    let plan = retention::plan(&one, &list, later(), &utc).unwrap();
    assert_eq!(plan.groups.len(), 1);
    assert_eq!(plan.removals().len(), 3);
    // A tag-only policy would empty beta's group: reported, not hidden.
    let tag_only = Policy {
        keep_tags: vec![vec!["keep".into()]],
        ..Policy::default()
    };
    let plan = retention::plan(&tag_only, &list, later(), &utc).unwrap();
    let emptied: Vec<_> = plan
        .emptied_groups()
        .map(|g| g.key.host.clone().unwrap())
        .collect();
    assert_eq!(emptied, ["beta"]);
    // `--tag` selection (the snapshot filter) limits what is considered.
    let filter = cairn::SnapshotFilter {
        tags: vec!["keep".to_string()],
        ..cairn::SnapshotFilter::default()
    };
    let sel: Vec<_> = list.iter().filter(|(_, s)| filter.matches(s)).collect();
    assert_eq!(sel.len(), 1);
    assert_eq!(sel[0].0, list[1].0);
}

#[test]
fn an_empty_policy_removes_everything() {
    let plan = retention::plan(
        &Policy::default(),
        &snaps(&["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"]),
        later(),
        &TimeZone::UTC,
    )
    .unwrap();
    assert!(Policy::default().is_empty());
    assert_eq!(plan.removals().len(), 2);
    assert_eq!(plan.emptied_groups().count(), 1);
}

// ---------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------

/// Six snapshots of one directory at given times; returns their ids, oldest first.
fn cli_repo(sc: &Scratch) -> (std::path::PathBuf, Vec<String>) {
    Spec::new().file("src/a.txt", b"alpha\n").create(sc.path());
    let (src, repo) = (sc.join("src"), sc.join("repo"));
    let mut ids = Vec::new();
    for (i, t) in [
        "2025-01-15T10:00:00Z",
        "2025-02-10T10:00:00Z",
        "2025-02-20T10:00:00Z",
        "2025-03-05T10:00:00Z",
        "2025-03-25T10:00:00Z",
        "2025-04-01T10:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(src.join("a.txt"), format!("version {i}\n")).unwrap();
        let out = run(cairn_at(&repo)
            .args(["snapshot", "--init", "--json", "--time", t])
            .arg(&src));
        out.ok();
        ids.push(out.json()["id"].as_str().unwrap().to_string());
    }
    (repo, ids)
}

fn listed(repo: &Path) -> BTreeSet<String> {
    let out = run(cairn_at(repo).args(["list", "--json"]));
    out.ok();
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cli_forget_dry_run_json_and_removal() {
    let sc = Scratch::new();
    let (repo, ids) = cli_repo(&sc);
    let all: BTreeSet<String> = ids.iter().cloned().collect();

    // --dry-run --json: one object per snapshot, newest first; nothing changes.
    let out = run(cairn_at(&repo).args(["forget", "--keep-monthly", "2", "--dry-run", "--json"]));
    out.ok();
    let arr = out.json();
    let arr = arr.as_array().unwrap();
    assert_eq!(arr.len(), 6);
    let rows: Vec<(String, String, String, Vec<String>)> = arr
        .iter()
        .map(|o| {
            assert_eq!(o.as_object().unwrap().len(), 4, "{o}");
            (
                o["id"].as_str().unwrap().to_string(),
                o["time"].as_str().unwrap().to_string(),
                o["action"].as_str().unwrap().to_string(),
                o["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let monthly = vec!["monthly".to_string()];
    assert_eq!(
        rows,
        vec![
            (
                ids[5].clone(),
                "2025-04-01T10:00:00+00:00".into(),
                "keep".into(),
                monthly.clone()
            ),
            (
                ids[4].clone(),
                "2025-03-25T10:00:00+00:00".into(),
                "keep".into(),
                monthly
            ),
            (
                ids[3].clone(),
                "2025-03-05T10:00:00+00:00".into(),
                "remove".into(),
                vec![]
            ),
            (
                ids[2].clone(),
                "2025-02-20T10:00:00+00:00".into(),
                "remove".into(),
                vec![]
            ),
            (
                ids[1].clone(),
                "2025-02-10T10:00:00+00:00".into(),
                "remove".into(),
                vec![]
            ),
            (
                ids[0].clone(),
                "2025-01-15T10:00:00+00:00".into(),
                "remove".into(),
                vec![]
            ),
        ]
    );
    assert_eq!(listed(&repo), all);

    // Text dry run names each snapshot's fate and changes nothing.
    let out = run(cairn_at(&repo).args(["forget", "--keep-monthly", "2", "--dry-run"]));
    out.ok();
    let text = out.out();
    assert!(text.contains("would remove 4 of 6"), "{text}");
    // Rows are `ID  DATE TIME  ACTION  REASONS`.
    let action_of = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(&id[..8]))
            .and_then(|l| l.split_whitespace().nth(3).map(String::from))
    };
    let actions: Vec<_> = ids.iter().rev().map(|id| action_of(id)).collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        actions,
        [
            some("keep"),
            some("keep"),
            some("remove"),
            some("remove"),
            some("remove"),
            some("remove")
        ],
        "{text}"
    );
    assert!(text.contains("keep    monthly\n"), "{text}");
    assert_eq!(listed(&repo), all);

    // The real thing: list shows exactly the kept ones.
    let out = run(cairn_at(&repo).args(["forget", "--keep-monthly", "2", "--keep-last", "1"]));
    out.ok();
    assert!(out.out().contains("removed 4 of 6"), "{}", out.out());
    assert_eq!(
        listed(&repo),
        BTreeSet::from([ids[4].clone(), ids[5].clone()])
    );
    // The kept snapshots still restore.
    let target = sc.join("restored");
    run(cairn_at(&repo)
        .args(["restore", &ids[4], "--target"])
        .arg(&target))
    .ok();
}

#[test]
fn cli_forget_refuses_to_empty_a_group() {
    let sc = Scratch::new();
    let (repo, ids) = cli_repo(&sc);
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    // No rule at all.
    let out = run(cairn_at(&repo).args(["forget"]));
    out.expect_code(2);
    assert!(out.stderr.contains("--allow-empty"), "{}", out.stderr);
    // A rule that keeps nothing of this group.
    let out = run(cairn_at(&repo).args(["forget", "--keep-tag", "nothing-has-this"]));
    out.expect_code(2);
    assert!(out.stderr.contains("every snapshot"), "{}", out.stderr);
    assert_eq!(listed(&repo), all);
    // Bad values are usage errors too.
    run(cairn_at(&repo).args(["forget", "--keep-within", "7w"])).expect_code(2);
    run(cairn_at(&repo).args(["forget", "--keep-last", "1", "--group-by", "user"])).expect_code(2);
    assert_eq!(listed(&repo), all);
    // With --allow-empty it does what it is told.
    run(cairn_at(&repo).args(["forget", "--keep-tag", "nothing-has-this", "--allow-empty"])).ok();
    assert!(listed(&repo).is_empty());
}

#[test]
fn cli_policy_set_show_and_forget_policy() {
    let sc = Scratch::new();
    let (repo, ids) = cli_repo(&sc);
    // Nothing stored yet.
    let out = run(cairn_at(&repo).args(["policy", "show"]));
    out.expect_code(2);
    assert!(
        out.stderr.contains("no stored retention policy"),
        "{}",
        out.stderr
    );
    run(cairn_at(&repo).args(["forget", "--policy"])).expect_code(2);
    run(cairn_at(&repo).args(["policy", "set"])).expect_code(2);

    run(cairn_at(&repo).args([
        "policy",
        "set",
        "--keep-monthly",
        "3",
        "--keep-within",
        "10d",
        "--keep-tag",
        "a,b",
        "--group-by",
        "host",
    ]))
    .ok();
    let out = run(cairn_at(&repo).args(["policy", "show", "--json"]));
    out.ok();
    assert_eq!(
        out.json(),
        serde_json::json!({
            "keep_last": 0, "keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0,
            "keep_monthly": 3, "keep_yearly": 0, "keep_within": "10d",
            "keep_tags": ["a,b"], "group_by": "host",
        })
    );
    let out = run(cairn_at(&repo).args(["policy", "show"]));
    out.ok();
    assert_eq!(
        out.out().trim(),
        "keep 3 monthly; keep all within 10d of the newest; keep all tagged a,b; per host"
    );
    // --policy cannot be mixed with rules on the command line.
    run(cairn_at(&repo).args(["forget", "--policy", "--keep-last", "1"])).expect_code(2);
    // Monthly 3: 04-01, 03-25, 02-20; within 10d of 04-01: 03-25 (7d).
    run(cairn_at(&repo).args(["forget", "--policy"])).ok();
    assert_eq!(
        listed(&repo),
        BTreeSet::from([ids[2].clone(), ids[4].clone(), ids[5].clone()])
    );
    // A new policy replaces the old one.
    run(cairn_at(&repo).args(["policy", "set", "--keep-last", "1"])).ok();
    run(cairn_at(&repo).args(["-q", "forget", "--policy"])).ok();
    assert_eq!(listed(&repo), BTreeSet::from([ids[5].clone()]));
}

#[test]
fn cli_forget_gc_reclaims_space_and_the_kept_snapshot_restores() {
    let sc = Scratch::new();
    let (src, repo) = (sc.join("src"), sc.join("repo"));
    std::fs::create_dir(&src).unwrap();
    let mut ids = Vec::new();
    let mut hashes = Vec::new();
    for (i, t) in [
        "2025-01-01T00:00:00Z",
        "2025-02-01T00:00:00Z",
        "2025-03-01T00:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        // Incompressible and different each time: each snapshot adds ~256 KiB.
        hashes.push(write_pseudo_random(
            &src.join("data.bin"),
            40 + i as u64,
            256 << 10,
        ));
        let out = run(cairn_at(&repo)
            .args(["snapshot", "--init", "--json", "--time", t])
            .arg(&src));
        out.ok();
        ids.push(out.json()["id"].as_str().unwrap().to_string());
    }
    let before = du(&repo.join("objects"));
    let out = run(cairn_at(&repo).args(["forget", "--keep-last", "1", "--gc", "--json"]));
    out.ok();
    let v = out.json();
    let actions: Vec<&str> = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["keep", "remove", "remove"]);
    assert_eq!(v["gc"]["snapshots"], 1, "{v}");
    assert_eq!(v["gc"]["dry_run"], false, "{v}");
    assert_eq!(listed(&repo), BTreeSet::from([ids[2].clone()]));
    let after = du(&repo.join("objects"));
    // Two of three equally sized snapshots' data are gone.
    assert!(
        after * 2 < before,
        "objects: {before} bytes before, {after} after"
    );
    let target = sc.join("restored");
    run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(&target))
    .ok();
    assert_eq!(
        hash_file(&restored_path(&target, &src.join("data.bin"))),
        hashes[2]
    );
}

#[test]
fn dst_fall_back_in_new_york() {
    // 2025-11-02: 02:00 EDT (-04:00) becomes 01:00 EST (-05:00).
    let ny = tz("America/New_York");
    let times = [
        "2025-11-01T23:50:00-04:00",
        "2025-11-02T01:15:00-04:00",
        "2025-11-02T01:45:00-05:00",
        "2025-11-02T02:05:00-05:00",
    ];
    let p = Policy {
        hourly: 5,
        daily: 5,
        ..Policy::default()
    };
    assert_eq!(
        apply(&p, &times, &ny),
        expect(&[
            ("2025-11-02T02:05-05:00", "hourly,daily"),
            ("2025-11-02T01:45-05:00", "hourly"),
            // Same local hour 01 as the EST 01:45: not a new hourly bucket;
            // not the oldest either.
            ("2025-11-02T01:15-04:00", "-"),
            ("2025-11-01T23:50-04:00", "hourly,daily"),
        ])
    );
}
