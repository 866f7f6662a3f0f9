//! Progress bars: the CLI's side of [`cairn::progress::Progress`].
//!
//! A bar is drawn on stderr only when stderr is a terminal and neither
//! `--quiet` nor `--json` is given (nor `TERM=dumb`); otherwise nothing is
//! drawn and no escape code or carriage return is written, and warnings go
//! to stderr one per line as always.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn::progress::{Phase, Progress};
use indicatif::{BinaryBytes, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Redraws per second: enough to look alive, cheap on a slow terminal.
const REFRESH_HZ: u8 = 5;

/// A progress bar on stderr, or nothing when it should not be drawn.
pub struct Bar {
    /// `None` when not drawing: every hook is then a no-op.
    bar: Option<ProgressBar>,
    /// Items done in the current phase (read by the template).
    items: Arc<AtomicU64>,
}

/// Whether a bar may be drawn: stderr is a terminal, not `--quiet`, not `--json`.
pub fn wanted(quiet: bool, json: bool) -> bool {
    !quiet
        && !json
        && std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

impl Bar {
    /// A bar for one command: drawn only when [`wanted`].
    pub fn new(quiet: bool, json: bool) -> Self {
        // Nothing is drawn until the first phase sets a style and the tick.
        let bar = wanted(quiet, json)
            .then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()));
        Self {
            bar,
            items: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Prints one line to stderr without garbling the bar.
    pub fn eprintln(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar from the screen (also done on drop).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The style for `phase`: a bar with ETA when the bytes total is known, a
/// spinner with counts and throughput otherwise.
fn style(phase: &Phase, items: &Arc<AtomicU64>) -> ProgressStyle {
    let template = if phase.total_bytes.is_some() {
        "{prefix} [{wide_bar}] {items} {binary_bytes}/{binary_total_bytes} \
         {binary_bytes_per_sec} ETA {eta}"
    } else {
        "{spinner} {prefix} {elapsed} {items}{bytes}"
    };
    let (items, total, unit) = (Arc::clone(items), phase.total_items, phase.unit);
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key(
            "items",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let done = items.load(Ordering::Relaxed);
                let _ = match total {
                    Some(t) => write!(w, "{done}/{t} {unit}"),
                    None => write!(w, "{done} {unit}"),
                };
            },
        )
        // Phases without a bytes total may count no bytes at all (gc's mark).
        .with_key(
            "bytes",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                if state.pos() > 0 {
                    let rate = BinaryBytes(state.per_sec() as u64);
                    let _ = write!(w, " {} {rate}/s", BinaryBytes(state.pos()));
                }
            },
        )
}

impl Progress for Bar {
    fn phase(&self, phase: &Phase) {
        let Some(bar) = &self.bar else { return };
        // The previous phase's line goes; the bar is reconfigured off screen
        // (each setter would otherwise draw a half-updated line).
        bar.finish_and_clear();
        bar.set_draw_target(ProgressDrawTarget::hidden());
        self.items.store(0, Ordering::Relaxed);
        bar.set_style(style(phase, &self.items));
        bar.set_prefix(phase.name);
        match phase.total_bytes {
            Some(n) => bar.set_length(n),
            None => bar.unset_length(),
        }
        bar.reset();
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(REFRESH_HZ));
        bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(REFRESH_HZ)));
    }

    fn items(&self, n: u64) {
        if self.bar.is_some() {
            self.items.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bar_when_quiet_or_json() {
        assert!(!wanted(true, false));
        assert!(!wanted(false, true));
        // Hooks on an undrawn bar do nothing and never fail.
        let bar = Bar::new(true, false);
        bar.phase(&Phase::new("read", "files").totals(2, 10));
        bar.items(1);
        bar.bytes(5);
        assert_eq!(bar.items.load(Ordering::Relaxed), 0);
    }
}
