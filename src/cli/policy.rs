//! `cairn policy`: store and show the repository's retention policy.

use cairn::retention::{GroupBy, Policy, Within};
use serde_json::json;

use super::{Globals, output, usage};

/// The keep rules shared by `forget` and `policy set`.
#[derive(clap::Args, Default)]
pub struct KeepArgs {
    /// Keep the N newest snapshots
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,

    /// Keep the newest snapshot of each of the N newest hours that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,

    /// Keep the newest snapshot of each of the N newest days (local time)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,

    /// Keep the newest snapshot of each of the N newest ISO weeks
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,

    /// Keep the newest snapshot of each of the N newest months
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,

    /// Keep the newest snapshot of each of the N newest years
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,

    /// Keep every snapshot newer than the group's latest minus DURATION (e.g. 7d, 1y2m3d4h)
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,

    /// Keep snapshots carrying tag T (T1,T2: carrying both; repeatable)
    #[arg(long = "keep-tag", value_name = "T")]
    pub keep_tags: Vec<String>,

    /// Apply the policy per group of snapshots sharing these fields [default: host,paths]
    #[arg(long, value_name = "FIELDS")]
    pub group_by: Option<String>,
}

impl KeepArgs {
    /// Whether any rule or grouping was given on the command line.
    pub fn any(&self) -> bool {
        self.keep_last != 0
            || self.keep_hourly != 0
            || self.keep_daily != 0
            || self.keep_weekly != 0
            || self.keep_monthly != 0
            || self.keep_yearly != 0
            || self.keep_within.is_some()
            || !self.keep_tags.is_empty()
            || self.group_by.is_some()
    }

    /// The policy these flags describe.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        let within = self.keep_within.as_deref().map(Within::parse).transpose()?;
        let group_by = self
            .group_by
            .as_deref()
            .map(GroupBy::parse)
            .transpose()?
            .unwrap_or_default();
        let mut keep_tags = Vec::new();
        for t in &self.keep_tags {
            let set: Vec<String> = t
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if set.is_empty() {
                return Err(usage(format!("--keep-tag `{t}` names no tag")));
            }
            keep_tags.push(set);
        }
        Ok(Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within,
            keep_tags,
            group_by,
        })
    }
}

/// Store or show the repository's retention policy
#[derive(clap::Args)]
#[command(
    long_about = "Store a retention policy in the repository (`policy set`) or print it \
(`policy show`). `cairn forget --policy` applies the stored policy, so a cron line can be \
`cairn forget --policy --gc`.",
    after_help = "Examples:\n  cairn policy set --keep-daily 7 --keep-weekly 4 --keep-monthly 12\n  cairn policy show --json\n\n\
Exit status: 0 ok; 1 error; 2 bad usage, not a repository, or (show) no policy stored."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Store a retention policy, replacing any earlier one
    Set(SetArgs),
    /// Print the stored retention policy
    Show(ShowArgs),
}

#[derive(clap::Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub keep: KeepArgs,

    /// Store a policy that keeps nothing
    #[arg(long)]
    pub allow_empty: bool,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    /// Print a JSON object
    #[arg(long)]
    pub json: bool,
}

/// The JSON form of a policy.
pub fn policy_json(p: &Policy) -> serde_json::Value {
    json!({
        "keep_last": p.last,
        "keep_hourly": p.hourly,
        "keep_daily": p.daily,
        "keep_weekly": p.weekly,
        "keep_monthly": p.monthly,
        "keep_yearly": p.yearly,
        "keep_within": p.within.map(|w| w.to_string()),
        "keep_tags": p.keep_tags.iter().map(|t| t.join(",")).collect::<Vec<_>>(),
        "group_by": p.group_by.to_string(),
    })
}

pub fn run(g: &Globals, args: &Args) -> anyhow::Result<()> {
    match &args.command {
        PolicyCommand::Set(a) => {
            let policy = a.keep.policy()?;
            if policy.is_empty() && !a.allow_empty {
                return Err(usage(
                    "the policy has no --keep-* rule and would remove every snapshot; \
                     give at least one, or --allow-empty",
                ));
            }
            let repo = g.open()?;
            repo.catalog().set_policy(&policy)?;
            if !g.quiet {
                println!("stored policy: {policy}");
            }
            Ok(())
        }
        PolicyCommand::Show(a) => {
            let repo = g.open()?;
            let Some(policy) = repo.catalog().policy()? else {
                return Err(no_policy());
            };
            if a.json {
                output::print_json(&policy_json(&policy))
            } else {
                println!("{policy}");
                Ok(())
            }
        }
    }
}

/// The usage error for a repository without a stored policy.
pub fn no_policy() -> anyhow::Error {
    usage(
        "this repository has no stored retention policy; store one with `cairn policy set --keep-...`",
    )
}
