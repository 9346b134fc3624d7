//! The terminal's sink: a progress bar on stderr (only when stderr is a
//! terminal and the work is large), warnings on stderr, and for rewrites
//! SIGINT/SIGTERM turned into a request to stop at the next safe point.

use crate::cli::exit::ExitCode;
use crate::ops::{Phase, Sink, StagedIn, Warning};
use crate::report;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Terminal {
    bar: Arc<Mutex<Option<ProgressBar>>>,
    signals: Option<Arc<Signals>>,
    /// --quiet: no progress bar.
    quiet: bool,
}

/// Where a rewrite is, for what a signal does.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing written yet (the check of a store's in-place rewrite, a dry
    /// run, a Raft log's check that writes nothing): stop at once, nothing
    /// is left behind.
    #[default]
    Before,
    /// A one-pass check (`Phase::CheckAndStage`): it writes the staged
    /// slices (under the output, or in place in each channel's staging
    /// directory) or a Raft log's new copy, so the first signal asks it to
    /// stop between slices (entries) and remove them; a second ends the process at once (the source
    /// untouched; an output marked unfinished, written anew by a rerun;
    /// in place, staging directories the server ignores and a rerun
    /// removes). Lasts until the write begins.
    Staging(StagedIn),
    /// Writing: finish the slices in hand, start no other.
    Writing,
    /// The write is over: let the run print its report.
    After,
}

#[derive(Default)]
struct Signals {
    stage: Mutex<Stage>,
    cancel: AtomicBool,
}

impl Terminal {
    pub fn new(quiet: bool) -> Terminal {
        Terminal {
            quiet,
            ..Terminal::default()
        }
    }

    fn bar(&self) -> Option<ProgressBar> {
        self.bar.lock().ok()?.clone()
    }

    /// A sink for a rewrite: SIGINT and SIGTERM no longer kill the process.
    /// Before anything is written, they end it at once; while it writes
    /// (or, with `--output` in one pass, stages during the check), the
    /// first asks the rewrite to stop between slices and a second one ends
    /// the process at once (the store stays readable, as after any crash;
    /// an unfinished output is marked so that a rerun writes it anew).
    pub fn for_rewrite(quiet: bool) -> Terminal {
        let mut t = Terminal::new(quiet);
        let Ok(mut sigs) = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ]) else {
            return t;
        };
        let state = Arc::new(Signals::default());
        let (st, bar) = (state.clone(), t.bar.clone());
        std::thread::spawn(move || {
            for _ in sigs.forever() {
                let say = |m: &str| {
                    let b = bar.lock().ok().and_then(|b| b.clone());
                    match b {
                        Some(b) => b.suspend(|| super::note(m)),
                        None => super::note(m),
                    }
                };
                // Held while deciding, so the write cannot start meanwhile.
                let Ok(stage) = st.stage.lock() else { continue };
                match *stage {
                    Stage::Before => {
                        say(report::words::INTERRUPTED_BEFORE_WRITE);
                        std::process::exit(ExitCode::Interrupted.code());
                    }
                    Stage::Staging(at) if st.cancel.swap(true, Ordering::SeqCst) => {
                        say(report::words::interrupted_twice_staging(at));
                        std::process::exit(ExitCode::Interrupted.code());
                    }
                    Stage::Staging(at) => say(report::words::stopping_staging(at)),
                    Stage::Writing if st.cancel.swap(true, Ordering::SeqCst) => {
                        say(report::words::INTERRUPTED_TWICE);
                        std::process::exit(ExitCode::Interrupted.code());
                    }
                    Stage::Writing => say(report::words::STOPPING),
                    Stage::After => {}
                }
            }
        });
        t.signals = Some(state);
        t
    }

    /// Whether the operator asked to stop.
    pub fn interrupted(&self) -> bool {
        self.signals
            .as_ref()
            .is_some_and(|s| s.cancel.load(Ordering::SeqCst))
    }

    fn stage(&self, to: Stage) {
        if let Some(s) = &self.signals {
            if let Ok(mut st) = s.stage.lock() {
                *st = to;
            }
        }
    }
}

/// The bar's line for a terminal `width` columns wide: never wider (the
/// bar itself takes what is left; the label is cut to 7 columns). Widest
/// fixed parts: label 7, brackets 4, "1023.99 MiB/1023.99 GiB" 23, rate
/// "1023.99 MiB/s" 14, " ETA 59m" 8: 56, plus a bar of at least 10.
fn template(width: u16) -> Option<&'static str> {
    match width {
        70.. => Some("{msg:>7!} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"),
        // label 7 + 4 + " 100%" 5 + " ETA 59m" 8 = 24, bar at least 10
        34.. => Some("{msg:>7!} [{wide_bar}] {percent:>3}% ETA {eta}"),
        10.. => Some("[{wide_bar}] {percent:>3}%"),
        // Too narrow for a bar that says anything.
        _ => None,
    }
}

impl Sink for Terminal {
    fn start(&self, phase: Phase, total: u64) {
        match phase {
            Phase::CheckAndStage(_, at) => self.stage(Stage::Staging(at)),
            Phase::Write(_) => self.stage(Stage::Writing),
            Phase::Inspect | Phase::Verify | Phase::Check => {}
        }
        // A phase that follows another without its finish (a node's Raft
        // log, then its store) replaces the bar, never leaves it drawn.
        if let Some(b) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            b.finish_and_clear();
        }
        if self.quiet || !std::io::stderr().is_terminal() || total < 64 * 1024 * 1024 {
            return;
        }
        let width = terminal_size::terminal_size_of(std::io::stderr()).map_or(80, |(w, _)| w.0);
        let Some(template) = template(width) else {
            return;
        };
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(report::phase_name(phase));
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.bar() {
            b.inc(n);
        }
    }

    /// The end of a phase. The end of the write lets the run report in
    /// peace; the end of a staging check keeps `Staging` (what it staged
    /// is still to be moved into place or removed) until the write starts.
    fn finish(&self) {
        if let Some(b) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            b.finish_and_clear();
        }
        if let Some(s) = &self.signals {
            if let Ok(mut st) = s.stage.lock() {
                if *st == Stage::Writing {
                    *st = Stage::After;
                }
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.interrupted()
    }

    fn warn(&self, w: Warning) {
        super::warn(&report::warning(&w));
    }
}
