//! `cairn forget`: remove snapshots according to a retention policy.

use std::io::Write;

use cairn::LockMode;
use cairn::gc::GcOptions;
use cairn::retention::{self, GroupKey, RetentionPlan};
use jiff::tz::TimeZone;
use serde_json::json;

use super::policy::{KeepArgs, no_policy};
use super::{Globals, output, usage};

/// Remove snapshots according to a retention policy
#[derive(clap::Args)]
#[command(
    long_about = "Remove snapshots according to a retention policy, with restic's `forget` \
semantics. Snapshots are grouped (--group-by, default host,paths) and the policy is applied \
to each group: walking newest first, each --keep-{hourly,daily,weekly,monthly,yearly} N \
keeps the newest snapshot of each of its N newest local-time buckets (weeks are ISO weeks), \
--keep-last N the N newest, --keep-within D all newer than the group's latest snapshot minus \
D, --keep-tag T all tagged T. A snapshot is kept if any rule keeps it. If a counted rule \
still has count left at a group's oldest snapshot, that one is kept too.\n\n\
Only snapshot records are removed; `cairn gc` reclaims the space. A policy that would \
remove every snapshot of a group is refused unless --allow-empty.",
    after_help = "Examples:\n  cairn forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run\n  \
cairn forget --keep-within 2d --keep-tag important --json\n  cairn forget --policy\n\n\
Exit status: 0 done; 1 error; 2 bad usage, no stored policy (--policy), or the policy would \
remove every snapshot of a group (without --allow-empty)."
)]
pub struct Args {
    #[command(flatten)]
    pub keep: KeepArgs,

    /// Apply the policy stored with `cairn policy set` (no --keep-* flags then)
    #[arg(long)]
    pub policy: bool,

    /// Allow removing every snapshot of a group (and a policy with no rule)
    #[arg(long)]
    pub allow_empty: bool,

    /// Show what would be kept and removed; change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Print a JSON array: one object per snapshot considered
    #[arg(long)]
    pub json: bool,

    /// Then collect garbage (`cairn gc`): waits for an exclusive repository lock
    #[arg(long)]
    pub gc: bool,

    /// Only consider snapshots matching these (--host, --tag, --path)
    #[command(flatten)]
    pub filter: super::filter::FilterArgs,
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    let repo = g.open()?;
    let policy = if args.policy {
        if args.keep.any() {
            return Err(usage(
                "--policy applies the stored policy: it cannot be combined with --keep-* or --group-by",
            ));
        }
        repo.catalog().policy()?.ok_or_else(no_policy)?
    } else {
        args.keep.policy()?
    };
    if policy.is_empty() && !args.allow_empty {
        return Err(usage(
            "no --keep-* rule given: this would remove every snapshot; \
             give at least one rule, or --allow-empty to remove them all",
        ));
    }
    let filter = args.filter.filter()?;
    let snapshots: Vec<_> = repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
        .collect();
    let plan = retention::plan(
        &policy,
        &snapshots,
        jiff::Timestamp::now(),
        &TimeZone::system(),
    )?;
    if !args.allow_empty {
        let emptied: Vec<String> = plan.emptied_groups().map(|g| describe(&g.key)).collect();
        if !emptied.is_empty() {
            return Err(usage(format!(
                "the policy would remove every snapshot of {}; nothing was removed \
                 (pass --allow-empty to allow it)",
                emptied.join("; ")
            )));
        }
    }
    let removals = plan.removals();
    // With --gc (and not a dry run) the JSON array is printed with the gc summary.
    let gc_follows = args.gc && !args.dry_run;
    if args.json && !gc_follows {
        output::print_json(&plan_json(&plan))?;
    } else if !args.json && !g.quiet {
        print_table(&policy, &plan)?;
    }
    if args.dry_run {
        if !g.quiet && !args.json {
            println!(
                "would remove {} of {} snapshot(s) (dry run: nothing changed)",
                removals.len(),
                snapshots.len()
            );
            if args.gc {
                println!("(--gc is skipped in a dry run; `cairn gc --dry-run` estimates it)");
            }
        }
        return Ok(());
    }
    let removed = repo.catalog().remove_snapshots(&removals)?;
    if !args.gc {
        if !g.quiet && !args.json {
            println!(
                "removed {removed} of {} snapshot(s); run `cairn gc` to reclaim their space",
                snapshots.len()
            );
        }
        return Ok(());
    }
    if !g.quiet && !args.json {
        println!(
            "removed {removed} of {} snapshot(s); collecting garbage",
            snapshots.len()
        );
    }
    // GC needs the lock exclusively: give up the shared one first.
    drop(repo);
    let mut repo = g.open_with(LockMode::Exclusive)?;
    let bar = super::progress::Bar::new(g.quiet, args.json);
    let summary = cairn::gc::collect_with(&repo, &GcOptions::default(), &bar)?;
    repo.compact_catalog()?;
    bar.clear();
    if args.json {
        return output::print_json(&json!({
            "snapshots": plan_json(&plan),
            "gc": super::gc::summary_json(&summary),
        }));
    }
    super::gc::report(g, &summary, false)
}

fn describe(key: &GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &key.host {
        parts.push(format!("host {h}"));
    }
    if let Some(p) = &key.paths {
        let p: Vec<String> = p.iter().map(|p| output::path(p)).collect();
        parts.push(format!("paths {}", p.join(",")));
    }
    if let Some(t) = &key.tags {
        parts.push(format!("tags [{}]", t.join(",")));
    }
    if parts.is_empty() {
        "all snapshots".into()
    } else {
        format!("the group ({})", parts.join(", "))
    }
}

fn reasons(d: &retention::Decision) -> Vec<String> {
    d.reasons.iter().map(ToString::to_string).collect()
}

fn plan_json(plan: &RetentionPlan) -> serde_json::Value {
    let arr: Vec<_> = plan
        .decisions()
        .map(|d| {
            json!({
                "id": d.id.to_hex(),
                "time": output::rfc3339(d.time_ns),
                "action": if d.keep { "keep" } else { "remove" },
                "reasons": reasons(d),
            })
        })
        .collect();
    serde_json::Value::Array(arr)
}

fn print_table(policy: &retention::Policy, plan: &RetentionPlan) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "policy: {policy}")?;
    for group in &plan.groups {
        writeln!(out, "\n{}:", describe(&group.key))?;
        writeln!(out, "{:<8}  {:<19}  {:<6}  REASONS", "ID", "TIME", "ACTION")?;
        for d in &group.decisions {
            let action = if d.keep { "keep" } else { "remove" };
            let line = format!(
                "{:<8}  {:<19}  {:<6}  {}",
                d.id.short(),
                output::local_time(d.time_ns),
                action,
                reasons(d).join(",")
            );
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}
