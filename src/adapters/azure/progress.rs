//! Sweep progress for the command line: a spinner with counts on a terminal, a few plain
//! lines on stderr otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::SweepProgress;

/// Shows subscriptions, Resource Graph pages and rows as a sweep goes.
pub(crate) struct SweepBar {
    bar: Option<ProgressBar>,
    subscriptions: AtomicU64,
    pages: AtomicU64,
    rows: AtomicU64,
}

impl Default for SweepBar {
    fn default() -> Self {
        SweepBar::new()
    }
}

impl SweepBar {
    /// A spinner when stderr is a terminal, plain lines otherwise.
    pub(crate) fn new() -> SweepBar {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message("listing subscriptions");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        SweepBar {
            bar,
            subscriptions: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            rows: AtomicU64::new(0),
        }
    }

    fn message(&self) -> String {
        format!(
            "{} subscriptions, {} Resource Graph pages, {} resources",
            self.subscriptions.load(Ordering::Relaxed),
            self.pages.load(Ordering::Relaxed),
            self.rows.load(Ordering::Relaxed)
        )
    }

    /// Clears the spinner; without one, prints the final counts when the sweep succeeded.
    pub(crate) fn finish(&self, succeeded: bool) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None if succeeded => eprintln!("seedwatch: swept {}", self.message()),
            None => {}
        }
    }
}

impl SweepProgress for SweepBar {
    fn subscriptions_found(&self, count: usize) {
        self.subscriptions.store(count as u64, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.set_message(self.message()),
            None => eprintln!("seedwatch: {count} subscriptions in scope"),
        }
    }

    fn page_read(&self, rows: usize) {
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.set_message(self.message()),
            None if pages.is_multiple_of(25) => eprintln!("seedwatch: {}", self.message()),
            None => {}
        }
    }
}
