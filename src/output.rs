//! The only module that prints. stdout carries data (the JSON document, or the site's URL);
//! stderr is for people: the plan, one line per action (or a progress bar on a terminal),
//! warnings, the closing summary, errors. Credentials never reach either.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::{Action, Counts, Op, Plan};
use crate::store::StoreError;

/// Set up `tracing` on stderr: `-v` shows skiff's debug log, `-vv` adds the AWS SDK's
/// request log (which carries no secrets at debug level), `-q` shows nothing.
pub fn init_logging(verbose: u8, quiet: bool, color: crate::cli::Color) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let skiff = match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    };
    // Never TRACE for the SDK: its trace log would include request headers.
    let sdk = if verbose >= 2 { LevelFilter::DEBUG } else { LevelFilter::ERROR };
    let filter = Targets::new()
        .with_target("skiff", skiff)
        .with_target("aws_config", sdk)
        .with_target("aws_smithy_runtime", sdk)
        .with_target("aws_sdk_s3", sdk)
        .with_default(LevelFilter::ERROR);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colored(color))
        .with_target(verbose >= 2);
    let _ = tracing_subscriber::registry().with(filter).with(layer).try_init();
}

/// Whether stderr gets colour: `--color`, and for `auto` a terminal without `NO_COLOR` or
/// `TERM=dumb`.
pub fn colored(color: crate::cli::Color) -> bool {
    match color {
        crate::cli::Color::Always => true,
        crate::cli::Color::Never => false,
        crate::cli::Color::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// Print an error and its causes, once, as `error: …` then `  caused by: …` lines.
pub fn error(err: &anyhow::Error) {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let _ = write!(text, "\n  caused by: {cause}");
    }
    eprintln!("{text}");
}

/// Whether a JSON document went to stdout already (then a failure adds none).
static JSON_WRITTEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With `--json`, a failure is a JSON document on stdout too, so `jq` in CI reads it:
/// `{"error": {"message", "causes", "kind", "exit_code"}}`; unless the command printed
/// its own document already.
pub fn error_json(err: &anyhow::Error, exit_code: u8, kind: &str) {
    if JSON_WRITTEN.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
    let doc = serde_json::json!({
        "error": { "message": err.to_string(), "causes": causes, "kind": kind, "exit_code": exit_code }
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// A line for people from anywhere (signal handlers), outside an [`Output`].
pub fn notice(message: &str) {
    eprintln!("{message}");
}

/// A command's result, as it shows itself through [`Output::render`]: the command owns its
/// words and tables, the printer only where they go.
pub trait Render: serde::Serialize {
    /// Lines for people, on stderr (not with `-q`).
    fn lines(&self) -> Vec<String> {
        Vec::new()
    }
    /// Warnings, on stderr.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// The data, on stdout: a table, the site's URL.
    fn data(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Progress of a running plan.
pub trait Reporter: Sync {
    /// The plan has `total` actions.
    fn started(&self, total: usize, upload_bytes: u64);
    /// One action ended.
    fn finished(&self, action: &Action, error: Option<&StoreError>);
}

/// A reporter that says nothing (tests).
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn started(&self, _total: usize, _upload_bytes: u64) {}
    fn finished(&self, _action: &Action, _error: Option<&StoreError>) {}
}

/// How much to say and where.
#[derive(Debug)]
pub struct Output {
    json: bool,
    quiet: bool,
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    last_status: Mutex<Option<std::time::Instant>>,
    /// While the bar runs: the actions done and planned, and the lines of what changed,
    /// listed once the bar is gone.
    progress: Mutex<Progress>,
}

/// What the bar counts besides bytes.
#[derive(Debug, Default)]
struct Progress {
    done: usize,
    total: usize,
    by_bytes: bool,
    changed: Vec<String>,
}

/// How many changed keys are listed after the bar.
const LISTED: usize = 20;

impl Output {
    /// Output for these global flags.
    pub fn new(json: bool, quiet: bool) -> Self {
        Self {
            json,
            quiet,
            terminal: std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb"),
            bar: Mutex::new(None),
            last_status: Mutex::new(None),
            progress: Mutex::new(Progress::default()),
        }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A line for people (not with `-q`).
    pub fn info(&self, message: &str) {
        if !self.quiet {
            self.line(message);
        }
    }

    /// A status line that replaces itself on a terminal; elsewhere printed at most every 30 s.
    pub fn status(&self, message: &str) {
        if self.quiet {
            return;
        }
        if self.terminal {
            eprint!("\r\x1b[2K{message}");
            let _ = std::io::stderr().flush();
            return;
        }
        let Ok(mut last) = self.last_status.lock() else { return };
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
            *last = Some(std::time::Instant::now());
            eprintln!("{message}");
        }
    }

    /// The phase a run is in (`scanning…`, `reading the bucket…`), on a terminal only: a
    /// log gets the plan and the summary, not the phases.
    pub fn phase(&self, message: &str) {
        if self.terminal {
            self.status(message);
        }
    }

    /// Wait for a scan; on a terminal, say meanwhile how far it has got (files and bytes
    /// hashed), every 200 ms.
    pub async fn scanned(
        &self,
        scanning: crate::scan::Scanning,
        dir: &std::path::Path,
    ) -> <crate::scan::Scanning as std::future::Future>::Output {
        let progress = scanning.progress().filter(|_| self.terminal && !self.quiet);
        let mut scanning = std::pin::pin!(scanning);
        let Some(progress) = progress else { return scanning.await };
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let result = loop {
            tokio::select! {
                result = &mut scanning => break result,
                _ = tick.tick() => {
                    let (files, size) = progress.get();
                    self.status(&format!("scanning {}: {} ({})", dir.display(), count(files, "file"), bytes(size)));
                }
            }
        };
        self.status_done();
        result
    }

    /// End a run of [`Output::status`] lines.
    pub fn status_done(&self) {
        if !self.quiet && self.terminal {
            eprint!("\r\x1b[2K");
        }
        if let Ok(mut last) = self.last_status.lock() {
            *last = None;
        }
    }

    /// A warning (not with `-q`).
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            self.line(&format!("warning: {message}"));
        }
    }

    fn line(&self, message: &str) {
        match self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    /// The plan, one line per action, then what it adds up to.
    pub fn plan(&self, plan: &Plan, location: &str, dry_run: bool) {
        if self.quiet {
            return;
        }
        let counts = plan.counts();
        if dry_run {
            // Copies of unchanged files into a new deploy are counted, not listed.
            for action in plan.actions.iter().filter(|a| a.op != Op::Copy) {
                eprintln!("{}", action_line(action, "would "));
            }
            eprintln!("dry run: {} for {location}; nothing was changed", planned_text(&counts));
        } else if !plan.is_empty() {
            eprintln!("publishing to {location}: {}", counts_text(&counts));
        }
    }

    /// Say what the default guard left out (dotfiles, dot-directories, `node_modules`), with
    /// the first few names, so nobody wonders where a file went or ships a secret unaware.
    pub fn left_out(&self, left_out: &[String]) {
        const SHOWN: usize = 3;
        if left_out.is_empty() {
            return;
        }
        let names: Vec<String> = left_out.iter().take(SHOWN).map(|k| format!("`{k}`")).collect();
        let mut names = names.join(", ");
        if left_out.len() > SHOWN {
            names.push_str(&format!(" and {} more", left_out.len() - SHOWN));
        }
        let entries = if left_out.len() == 1 { "1 entry".to_string() } else { format!("{} entries", left_out.len()) };
        self.info(&format!(
            "left out by default: {names} ({entries}: dotfiles, dot-directories but .well-known/, node_modules/; `[deploy] include` publishes one anyway)"
        ));
    }

    /// Ask a yes/no question on the terminal; `false` unless the answer starts with `y`.
    pub fn confirm(&self, question: &str) -> bool {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        answer.trim_start().starts_with(['y', 'Y'])
    }

    /// The closing summary line: counts, bytes, time.
    pub fn summary(&self, counts: &Counts, location: &str, elapsed: Duration, complete: bool) {
        self.finish_bar();
        if self.quiet {
            return;
        }
        let nothing_to_do = counts.uploaded + counts.copied + counts.metadata_updated + counts.deleted == 0;
        if complete && nothing_to_do {
            eprintln!(
                "{location} is up to date: {} ({}) unchanged, checked in {:.1}s",
                count(counts.unchanged, "file"),
                bytes(counts.bytes),
                elapsed.as_secs_f64()
            );
            return;
        }
        let verb = if complete { "published" } else { "partly published" };
        eprintln!(
            "{verb} {} ({}) to {location} in {:.1}s: {}",
            count(counts.files, "file"),
            bytes(counts.bytes),
            elapsed.as_secs_f64(),
            counts_text(counts)
        );
    }

    /// The machine-readable result on stdout.
    /// Written as it is serialised: a publish of 100k files does not build the text first.
    pub fn json<T: serde::Serialize + ?Sized>(&self, value: &T) {
        JSON_WRITTEN.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut stdout, value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
            .and_then(|()| stdout.flush());
        match written {
            // A closed stdout (`skiff … --json | head`) is the reader's choice.
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                self.warn(&format!("the JSON result could not be written to stdout: {err}"));
            }
            _ => {}
        }
    }

    /// A command's result: with `--json` the result as JSON; otherwise its lines for people
    /// and warnings on stderr, and its data lines (a table, the site's URL) on stdout.
    pub fn render<R: Render + ?Sized>(&self, result: &R) {
        if self.json {
            self.json(result);
            return;
        }
        for line in result.lines() {
            self.info(&line);
        }
        for warning in result.warnings() {
            self.warn(&warning);
        }
        for line in result.data() {
            println!("{line}");
        }
    }

    /// The data line on stdout when there is no `--json`: the site's URL.
    pub fn url(&self, url: &str) {
        if !self.json {
            println!("{url}");
        }
    }

    /// Take the bar down, then list what changed (the first [`LISTED`] keys).
    fn finish_bar(&self) {
        let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) else { return };
        bar.finish_and_clear();
        let Ok(mut progress) = self.progress.lock() else { return };
        let changed = std::mem::take(&mut progress.changed);
        for line in changed.iter().take(LISTED) {
            eprintln!("{line}");
        }
        if changed.len() > LISTED {
            eprintln!("and {} more", changed.len() - LISTED);
        }
    }
}

impl Reporter for Output {
    /// On a terminal (not `TERM=dumb`), a bar: in bytes with throughput and ETA when
    /// there are bytes to upload, else in actions. Elsewhere each action is a line.
    fn started(&self, total: usize, upload_bytes: u64) {
        if self.quiet || !self.terminal || total == 0 {
            return;
        }
        let by_bytes = upload_bytes > 0;
        let (length, template) = if by_bytes {
            (
                upload_bytes,
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
            )
        } else {
            (total as u64, "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
        };
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut progress) = self.progress.lock() {
            *progress = Progress { done: 0, total, by_bytes, changed: Vec::new() };
        }
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn finished(&self, action: &Action, error: Option<&StoreError>) {
        let line = match error {
            None => action_line(action, ""),
            Some(err) => format!("failed {}: {err}", action.key),
        };
        let guard = self.bar.lock();
        match guard.as_deref().ok().and_then(Option::as_ref) {
            Some(bar) => {
                let Ok(mut progress) = self.progress.lock() else { return };
                progress.done += 1;
                if progress.by_bytes {
                    if action.op == Op::Upload {
                        bar.inc(action.bytes);
                    }
                    bar.set_message(format!("{}/{} {}", progress.done, progress.total, action.key));
                } else {
                    bar.inc(1);
                    bar.set_message(action.key.clone());
                }
                if error.is_some() {
                    bar.println(line);
                } else if action.op != Op::Copy {
                    progress.changed.push(line);
                }
            }
            None if error.is_some() || (!self.quiet && action.op != Op::Copy) => eprintln!("{line}"),
            None => {}
        }
    }
}

fn action_line(action: &Action, prefix: &str) -> String {
    let op = match action.op {
        Op::Upload => "upload",
        Op::UpdateMetadata => "update-metadata",
        Op::Copy => "copy",
        Op::Delete => "delete",
    };
    let reason =
        serde_json::to_value(action.reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    format!("{prefix}{op:<15} {} ({reason}, {})", action.key, bytes(action.bytes))
}

fn counts_text(counts: &Counts) -> String {
    let mut parts = vec![format!("{} uploaded ({})", counts.uploaded, bytes(counts.uploaded_bytes))];
    if counts.copied > 0 {
        parts.push(format!("{} copied", counts.copied));
    }
    parts.push(format!("{} headers updated", counts.metadata_updated));
    parts.push(format!("{} deleted", counts.deleted));
    parts.push(format!("{} unchanged", counts.unchanged));
    parts.join(", ")
}

/// What a dry run would do, in the conditional: a dry run never says "deleted".
fn planned_text(counts: &Counts) -> String {
    let mut parts = vec![format!("would upload {} ({})", count(counts.uploaded, "file"), bytes(counts.uploaded_bytes))];
    if counts.copied > 0 {
        parts.push(format!("copy {}", count(counts.copied, "object")));
    }
    parts.push(format!("update the headers of {}", count(counts.metadata_updated, "object")));
    parts.push(format!("delete {}", count(counts.deleted, "object")));
    parts.push(format!("{} unchanged", count(counts.unchanged, "file")));
    parts.join(", ")
}

/// A count for people, with its noun in the singular or plural: `1 object`, `3 objects`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(1, "object"), "1 object");
        assert_eq!(count(0, "object"), "0 objects");
        assert_eq!(count(2, "file"), "2 files");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
