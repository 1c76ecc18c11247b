//! What a person sees while images build: live per-image progress on a terminal (state,
//! current step, elapsed time), plain timestamped lines elsewhere (CI), a full log per image
//! under `target/xtask/logs/`, the failing step with its last lines of output, and a summary
//! table at the end. Knows nothing of engines: it is told what happens.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Lines of output kept per image, shown when it fails.
pub const TAIL_LINES: usize = 25;

struct Running {
    bar: Option<ProgressBar>,
    log: Option<File>,
    tail: VecDeque<String>,
    step: Option<String>,
}

/// Progress of a run; shared by every job.
pub struct Reporter {
    multi: Option<MultiProgress>,
    logs: PathBuf,
    running: Mutex<HashMap<String, Running>>,
}

/// `HH:MM:SS` in UTC, for plain progress lines.
pub fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

pub fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        format!("{}m{:02}s", duration.as_secs() / 60, duration.as_secs() % 60)
    }
}

pub fn human_size(bytes: i64) -> String {
    let value = bytes.unsigned_abs() as f64;
    let sign = if bytes < 0 { "-" } else { "" };
    if value >= 1e9 {
        format!("{sign}{:.2} GB", value / 1e9)
    } else if value >= 1e6 {
        format!("{sign}{:.1} MB", value / 1e6)
    } else if value >= 1e3 {
        format!("{sign}{:.1} kB", value / 1e3)
    } else {
        format!("{sign}{value} B")
    }
}

impl Reporter {
    /// Live bars when standard error is a terminal (and `CI` is unset), plain lines otherwise.
    pub fn new(logs: &Path) -> Reporter {
        let live = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let multi = live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Reporter { multi, logs: logs.to_path_buf(), running: Mutex::new(HashMap::new()) }
    }

    /// A reporter that writes logs but draws nothing (tests, benchmarks).
    pub fn quiet(logs: &Path) -> Reporter {
        Reporter {
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
            logs: logs.to_path_buf(),
            running: Mutex::new(HashMap::new()),
        }
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{}.log", name.replace(['@', '/'], "-")))
    }

    /// A message that belongs to no image (bases, notices).
    pub fn note(&self, message: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(message);
            }
            None => eprintln!("[{}] {message}", clock()),
        }
    }

    pub fn started(&self, name: &str, what: &str) {
        let _ = fs::create_dir_all(&self.logs);
        let log = File::create(self.log_path(name)).ok();
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:24} {elapsed:>4} {wide_msg}").expect("valid template"),
            );
            bar.set_prefix(name.to_string());
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if bar.is_none() {
            eprintln!("[{}] {name}: {what}", clock());
        }
        self.running
            .lock()
            .expect("reporter lock")
            .insert(name.to_string(), Running { bar, log, tail: VecDeque::new(), step: None });
    }

    pub fn step(&self, name: &str, step: &str) {
        let mut running = self.running.lock().expect("reporter lock");
        let Some(state) = running.get_mut(name) else {
            return;
        };
        if let Some(log) = &mut state.log {
            let _ = writeln!(log, "#### {step}");
        }
        state.step = Some(step.to_string());
        match &state.bar {
            Some(bar) => bar.set_message(step.to_string()),
            None => eprintln!("[{}] {name}: {step}", clock()),
        }
    }

    pub fn output(&self, name: &str, line: &str) {
        let mut running = self.running.lock().expect("reporter lock");
        let Some(state) = running.get_mut(name) else {
            return;
        };
        if let Some(log) = &mut state.log {
            let _ = writeln!(log, "{line}");
        }
        if state.tail.len() == TAIL_LINES {
            state.tail.pop_front();
        }
        state.tail.push_back(line.to_string());
    }

    /// Ends an image's progress; returns the step it was in and its last lines of output.
    pub fn finished(&self, name: &str, message: &str) -> (Option<String>, Vec<String>) {
        let state = self.running.lock().expect("reporter lock").remove(name);
        let Some(mut state) = state else {
            return (None, Vec::new());
        };
        if let Some(log) = &mut state.log {
            let _ = writeln!(log, "#### {message}");
        }
        match &state.bar {
            Some(bar) => {
                bar.finish_and_clear();
                if let Some(multi) = &self.multi {
                    let _ = multi.println(format!("{name}: {message}"));
                }
            }
            None => eprintln!("[{}] {name}: {message}", clock()),
        }
        (state.step, state.tail.into_iter().collect())
    }
}
