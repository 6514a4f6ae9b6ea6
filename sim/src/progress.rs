//! Progress on stderr for the long commands (`run --repeat`, `explore`,
//! `bench`, the report card): work done, findings so far, rate, time
//! left. Drawn only when stderr is a terminal: a log or a pipe gets
//! nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar for one command.
pub struct Progress {
    bar: ProgressBar,
    findings: u64,
    counts_findings: bool,
}

impl Progress {
    /// A bar for `total` pieces of `what` (more can be added as they are
    /// known); `findings` says whether the pieces can find something.
    pub fn new(what: &str, total: u64, findings: bool) -> Progress {
        let p = Progress::hidden(what, total, findings);
        p.bar.set_draw_target(ProgressDrawTarget::stderr());
        p
    }

    /// The same, never drawn (one run is not worth a bar).
    pub fn hidden(what: &str, total: u64, findings: bool) -> Progress {
        let bar = ProgressBar::hidden();
        bar.set_length(total);
        let template = if findings {
            "{prefix} [{bar:28}] {pos}/{len} runs, {msg}, {per_sec}, {eta} left"
        } else {
            "{prefix} [{bar:28}] {pos}/{len} {msg} {eta} left"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        let p = Progress {
            bar,
            findings: 0,
            counts_findings: findings,
        };
        p.say();
        p
    }

    fn say(&self) {
        if self.counts_findings {
            let n = self.findings;
            self.bar
                .set_message(format!("{n} finding{}", if n == 1 { "" } else { "s" }));
        }
    }

    /// One more piece done, with `findings` found in it.
    pub fn step(&mut self, findings: u64) {
        self.findings += findings;
        self.say();
        self.bar.inc(1);
    }

    /// One more piece done, called `label`.
    pub fn step_named(&mut self, label: &str) {
        self.bar.set_message(label.to_string());
        self.bar.inc(1);
    }

    /// `more` pieces came to be known.
    pub fn add(&self, more: u64) {
        self.bar.inc_length(more);
    }

    /// Say `line` on stderr above the bar.
    pub fn say_above(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Done: the bar goes away.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
