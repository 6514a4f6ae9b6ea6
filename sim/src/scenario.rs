//! Scenario files: the TOML schema, defaults, and validation that names the
//! file, line, column and key of every mistake.
//!
//! A scenario is parsed once ([`Scenario::parse`]) and turned into a
//! [`Plan`] with the command line's overrides applied ([`Scenario::plan`]).
//! All validation happens in `plan`, in one place, because some checks
//! depend on the overrides (a CPU index is out of range only for a given
//! number of CPUs; a point must be passed by one of the designs that run).
//! Unknown keys, wrong types and impossible values are errors; nothing is
//! ignored and nothing runs until the whole plan is valid.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use klog::printk::{self, DesignInfo, DesignKind};
use klog::{point, Context, Level};
use serde::Deserialize;
use toml::Spanned;

use crate::machine::{Dump, Interrupt, NmiAction, NmiSource, Targets, Trigger};
use crate::outcome::Outcome;
use crate::watchdog::OnDeadlock;
use crate::workload::TaskSpec;
use crate::workload::{Stall, StallKind};

/// The built-in scenario library, embedded so the binary runs anywhere.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "nmi-in-console-unlock",
        include_str!("../../scenarios/nmi-in-console-unlock.toml"),
    ),
    (
        "nmi-in-vprintk-window",
        include_str!("../../scenarios/nmi-in-vprintk-window.toml"),
    ),
    ("nmi-storm", include_str!("../../scenarios/nmi-storm.toml")),
    (
        "random-nmi-storm",
        include_str!("../../scenarios/random-nmi-storm.toml"),
    ),
    (
        "console-storm",
        include_str!("../../scenarios/console-storm.toml"),
    ),
    (
        "reader-overrun",
        include_str!("../../scenarios/reader-overrun.toml"),
    ),
    (
        "nmi-buffer-overflow",
        include_str!("../../scenarios/nmi-buffer-overflow.toml"),
    ),
    (
        "nmi-buffers-irqs-off",
        include_str!("../../scenarios/nmi-buffers-irqs-off.toml"),
    ),
    (
        "backtrace-abba",
        include_str!("../../scenarios/backtrace-abba.toml"),
    ),
    (
        "rcu-stall-nmi-backtrace",
        include_str!("../../scenarios/rcu-stall-nmi-backtrace.toml"),
    ),
    (
        "rcu-stall-remote-dump",
        include_str!("../../scenarios/rcu-stall-remote-dump.toml"),
    ),
    (
        "rcu-stall-nmi-buffers",
        include_str!("../../scenarios/rcu-stall-nmi-buffers.toml"),
    ),
    (
        "prb-writer-interrupted",
        include_str!("../../scenarios/prb-writer-interrupted.toml"),
    ),
    (
        "panic-frozen-lock-holder",
        include_str!("../../scenarios/panic-frozen-lock-holder.toml"),
    ),
    (
        "nmi-in-console-sem",
        include_str!("../../scenarios/nmi-in-console-sem.toml"),
    ),
    (
        "nmi-deferred-deadlock",
        include_str!("../../scenarios/nmi-deferred-deadlock.toml"),
    ),
    (
        "panic-stops-console-owner",
        include_str!("../../scenarios/panic-stops-console-owner.toml"),
    ),
    (
        "panic-stops-port-lock-holder",
        include_str!("../../scenarios/panic-stops-port-lock-holder.toml"),
    ),
    (
        "nbcon-handover",
        include_str!("../../scenarios/nbcon-handover.toml"),
    ),
    (
        "nbcon-panic-takeover",
        include_str!("../../scenarios/nbcon-panic-takeover.toml"),
    ),
    (
        "lockdep-only",
        include_str!("../../scenarios/lockdep-only.toml"),
    ),
    ("many-cpus", include_str!("../../scenarios/many-cpus.toml")),
];

/// At most this many simulated CPUs. More OS threads than that on a
/// two-core host starve each other for whole scheduler slices, and the
/// watchdog would report lockups that are the host's, not the design's.
pub const MAX_CPUS: i64 = 64;
const CPUS_WHY: &str =
    " (more CPU threads than that starve each other on a small host and the watchdog would see lockups that are not the design's)";

/// The scenario the bare command runs.
pub const FLAGSHIP: &str = "nmi-in-console-unlock";

/// Bad input: where, which key, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The file (or `command line`).
    pub file: String,
    /// 1-based line, 0 when not about a place in a file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key, as a dotted path (`watchdog.on_deadlock`, `nmi[0].point`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, true) => write!(f, "{}: {}", self.file, self.message),
            (0, false) => write!(f, "{}: `{}`: {}", self.file, self.key, self.message),
            (_, true) => write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            ),
            (_, false) => write!(
                f,
                "{}:{}:{}: `{}`: {}",
                self.file, self.line, self.column, self.key, self.message
            ),
        }
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// An error about a command-line option.
    pub fn option(key: &str, message: impl Into<String>) -> InputError {
        InputError {
            file: "command line".into(),
            line: 0,
            column: 0,
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn get(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum CpuSel {
    One(i64),
    List(Vec<i64>),
    Text(String),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    #[serde(default)]
    summary: String,
    cpus: Spanned<i64>,
    duration_ms: Spanned<i64>,
    seed: Option<Spanned<i64>>,
    designs: Option<Spanned<Vec<Spanned<String>>>>,
    time_scale: Option<Spanned<Num>>,
    hz: Option<Spanned<i64>>,
    console: Option<RawConsole>,
    buffer: Option<RawBuffer>,
    watchdog: Option<RawWatchdog>,
    reader: Option<RawReader>,
    #[serde(default)]
    task: Vec<RawTask>,
    #[serde(default)]
    nmi: Vec<RawNmi>,
    #[serde(default)]
    irq: Vec<RawNmi>,
    expect: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    baud: Option<Spanned<i64>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawBuffer {
    size: Option<Spanned<i64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawReader {
    hz: Spanned<i64>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawWatchdog {
    threshold_ms: Option<Spanned<Num>>,
    on_deadlock: Option<Spanned<String>>,
    hard_limit_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawTask {
    cpus: Spanned<CpuSel>,
    pieces: Option<Spanned<i64>>,
    count: Option<Spanned<i64>>,
    stall: Option<Spanned<String>>,
    stall_at_ms: Option<Spanned<Num>>,
    stall_ms: Option<Spanned<Num>>,
    stall_printk: Option<Spanned<bool>>,
    printk_hz: Option<Spanned<i64>>,
    len: Option<Spanned<Vec<i64>>>,
    level: Option<Spanned<String>>,
}

/// Declares an entry's raw form, `kind` and its optional keys (each one
/// `Option<Spanned<_>>`), and `given()`: the optional keys written, with
/// where, in the order declared. The keys' names are written once.
macro_rules! raw_entry {
    (
        $(#[$meta:meta])*
        struct $ty:ident { $( $key:ident: $t:ty ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct $ty {
            kind: Spanned<String>,
            $( $key: Option<Spanned<$t>>, )+
        }

        impl $ty {
            /// The optional keys given, with where they are.
            fn given(&self) -> Vec<(&'static str, Range<usize>)> {
                let mut out = Vec::new();
                $(
                    if let Some(v) = &self.$key {
                        out.push((stringify!($key), v.span()));
                    }
                )+
                out
            }
        }
    };
}

raw_entry! {
    /// An `[[nmi]]` or `[[irq]]` entry as written; which keys each kind
    /// and action accepts is [`SourceKind::keys`] and [`ActionKind::keys`].
    struct RawNmi {
        // When an `at_point` source fires, and where.
        point: String, cpu: CpuSel, hit_on: CpuSel, nth: i64, wait: bool, hold: bool,
        context: String, times: i64, action: String,
        // A `printk` action.
        lines: i64, len: Vec<i64>, level: String,
        // `periodic`, `random`, and the sources that fire once at a time.
        period_us: i64, rate_hz: Num, at_ms: Num, from_cpu: i64,
        // The all-CPU backtrace actions, `backtrace` and `panic`.
        dump: String, serialize: bool, land_at: String, exclude_self: bool, stop_at: String,
    }
}

/// One `[[nmi]]`/`[[irq]]` entry being parsed, with what parsing it
/// needs: the machine's CPU count (and why it has that many, for
/// messages) and the scenario's designs.
struct Entry<'a> {
    n: &'a RawNmi,
    /// `[[nmi]]` or `[[irq]]`.
    interrupt: Interrupt,
    /// Its index in its table.
    i: usize,
    cpus: usize,
    why: &'a str,
    designs: &'a [&'static DesignInfo],
}

impl Entry<'_> {
    /// Key `f` as errors name it: `nmi[2].point`.
    fn key(&self, f: &str) -> String {
        let table = match self.interrupt {
            Interrupt::Nmi => "nmi",
            Interrupt::Irq => "irq",
        };
        format!("{table}[{}].{f}", self.i)
    }
}

/// The machine's keys of a scenario, checked.
struct MachineKeys {
    time_scale: f64,
    hz: u32,
    baud: u32,
    reader_hz: u32,
    buffer_size: usize,
}

/// A parsed scenario file.
#[derive(Debug)]
pub struct Scenario {
    file: String,
    text: String,
    raw: Raw,
}

/// What the command line changes in a scenario.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--design`, in order.
    pub designs: Vec<String>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--cpus`.
    pub cpus: Option<usize>,
    /// `--duration-ms`.
    pub duration_ms: Option<u64>,
}

/// A scenario ready to run: every value checked, every default filled in.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Scenario name.
    pub name: String,
    /// One-line summary.
    pub summary: String,
    /// Number of CPUs.
    pub cpus: usize,
    /// Run length.
    pub duration_ms: u64,
    /// First seed.
    pub seed: u64,
    /// Designs to run, in order.
    pub designs: Vec<&'static DesignInfo>,
    /// Kernel time constants × this.
    pub time_scale: f64,
    /// Timer ticks per second.
    pub hz: u32,
    /// Console speed (0 = instant).
    pub baud: u32,
    /// Main log buffer bytes.
    pub buffer_size: usize,
    /// Lockup threshold.
    pub threshold_ms: f64,
    /// What follows a deadlock.
    pub on_deadlock: OnDeadlock,
    /// Hard wall-clock limit of one run.
    pub hard_limit_ms: u64,
    /// Per CPU: its task load.
    pub tasks: Vec<Option<TaskSpec>>,
    /// NMI sources.
    pub nmis: Vec<NmiSource>,
    /// Expected outcome per design.
    pub expect: Vec<(&'static str, Outcome)>,
    /// `[reader] hz`: a log reader thread reading this many records a
    /// second (0: none).
    pub reader_hz: u32,
    /// Record a timeline of every CPU (set by `--trace`, `--svg`,
    /// `explain`).
    pub timeline: bool,
    /// Count which CPU passes which point in which context (explore's
    /// first run); the report's `passes`.
    pub census: bool,
    /// End the run this long (ms) after every `at_point` source has
    /// fired (explore, reduce).
    pub settle_ms: Option<f64>,
}

/// Find `name` as a file, else as a built-in scenario.
pub fn load(name: &str) -> Result<Scenario, InputError> {
    let path = std::path::Path::new(name);
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| InputError {
            file: name.into(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        return Scenario::parse(name, &text);
    }
    if let Some((n, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return Scenario::parse(&format!("scenarios/{n}.toml"), text);
    }
    Err(InputError {
        file: name.into(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!(
            "no such file or built-in scenario (built-in: {})",
            BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// The dotted key at `line` (1-based): the table header above it, then the
/// key before `=` on the line, or `named` if the message named one.
fn key_at(text: &str, line: usize, named: Option<&str>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines
        .get(line.saturating_sub(1))
        .copied()
        .unwrap_or("")
        .trim();
    let header = lines
        .iter()
        .take(line)
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = named.map(str::to_string).or_else(|| {
        here.split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['))
    });
    let found = match (header.filter(|h| !h.is_empty()), key) {
        (Some(h), Some(k)) if !here.starts_with('[') || named.is_some() => format!("{h}.{k}"),
        (Some(h), None) => h,
        (_, Some(k)) => k,
        (None, None) => String::new(),
    };
    if !found.is_empty() {
        return found;
    }
    // Nothing that looks like a key: name what is there.
    here.split_whitespace()
        .next()
        .map_or_else(|| "(top level)".to_string(), str::to_string)
}

impl Scenario {
    /// Parse `text`, read from `file`. Syntax, unknown keys and wrong types
    /// are reported here; values are checked by [`Scenario::plan`].
    pub fn parse(file: &str, text: &str) -> Result<Scenario, InputError> {
        match toml::from_str::<Raw>(text) {
            Ok(raw) => Ok(Scenario {
                file: file.into(),
                text: text.into(),
                raw,
            }),
            Err(e) => {
                let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
                let mut message = e.message().trim().to_string();
                if message.is_empty() {
                    message = "invalid TOML here".into();
                }
                let named = ["unknown field `", "missing field `", "duplicate key `"]
                    .iter()
                    .find_map(|p| message.strip_prefix(p))
                    .and_then(|rest| rest.split('`').next());
                let mut key = key_at(text, line, named);
                if message.starts_with("missing field") {
                    if let Some(n) = named {
                        key = n.into();
                    }
                }
                let message = message
                    .replace(
                        "data did not match any variant of untagged enum Num",
                        "expected a number",
                    )
                    .replace(
                        "data did not match any variant of untagged enum CpuSel",
                        "expected a CPU index, a list of indices, \"all\" or a range like \"0-3\"",
                    );
                Err(InputError {
                    file: file.into(),
                    line,
                    column,
                    key,
                    message,
                })
            }
        }
    }

    /// The file it was read from (`scenarios/NAME.toml` for a built-in).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        self.raw.name.get_ref()
    }

    /// The scenario's summary.
    pub fn summary(&self) -> &str {
        &self.raw.summary
    }

    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> InputError {
        let (line, column) = line_col(&self.text, span.start);
        InputError {
            file: self.file.clone(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    fn int<T: TryFrom<i64>>(
        &self,
        v: &Spanned<i64>,
        key: &str,
        lo: i64,
        hi: i64,
    ) -> Result<T, InputError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return Err(self.err(v.span(), key, format!("must be from {lo} to {hi}, got {x}")));
        }
        T::try_from(x).map_err(|_| self.err(v.span(), key, format!("out of range: {x}")))
    }

    fn opt_int<T: TryFrom<i64>>(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        lo: i64,
        hi: i64,
        default: T,
    ) -> Result<T, InputError> {
        match v {
            Some(v) => self.int(v, key, lo, hi),
            None => Ok(default),
        }
    }

    /// How an all-CPU backtrace is taken: `dump` and `serialize`.
    fn dump(&self, e: &Entry<'_>, rcu_splat: bool) -> Result<Dump, InputError> {
        let (n, k) = (e.n, |f: &str| e.key(f));
        let remote = match &n.dump {
            None => false,
            Some(d) => match d.get_ref().as_str() {
                "nmi" => false,
                "remote" => true,
                other => {
                    return Err(self.err(
                        d.span(),
                        &k("dump"),
                        format!("unknown dump `{other}`, expected nmi or remote"),
                    ))
                }
            },
        };
        let land_at = n
            .land_at
            .as_ref()
            .map(|p| self.design_point(p, &k("land_at"), e.designs))
            .transpose()?;
        if remote {
            if let Some(p) = &n.land_at {
                return Err(self.err(p.span(), &k("land_at"), "a remote dump sends no NMI"));
            }
        }
        Ok(Dump {
            rcu_splat,
            remote,
            serialize: n.serialize.as_ref().is_some_and(|v| *v.get_ref()),
            exclude_self: n.exclude_self.as_ref().is_some_and(|v| *v.get_ref()),
            land_at,
        })
    }

    /// A `[[task]]`'s stall keys: all three or none.
    fn stall(&self, t: &RawTask, k: &dyn Fn(&str) -> String) -> Result<Option<Stall>, InputError> {
        let (Some(kind), Some(at), Some(len)) = (&t.stall, &t.stall_at_ms, &t.stall_ms) else {
            let given = [
                t.stall_printk.as_ref().map(|v| (v.span(), "stall_printk")),
                t.stall.as_ref().map(|v| (v.span(), "stall")),
                t.stall_at_ms.as_ref().map(|v| (v.span(), "stall_at_ms")),
                t.stall_ms.as_ref().map(|v| (v.span(), "stall_ms")),
            ];
            if let Some((span, key)) = given.into_iter().flatten().next() {
                return Err(self.err(
                    span,
                    &k(key),
                    "a stall needs `stall`, `stall_at_ms` and `stall_ms`",
                ));
            }
            return Ok(None);
        };
        let kind = match kind.get_ref().as_str() {
            "irqs_off" => StallKind::IrqsOff,
            "preempt_off" => StallKind::PreemptOff,
            other => {
                return Err(self.err(
                    kind.span(),
                    &k("stall"),
                    format!("unknown stall `{other}`, expected irqs_off or preempt_off"),
                ))
            }
        };
        let ms = |v: &Spanned<Num>, key: &str| {
            let x = v.get_ref().get();
            if x.is_finite() && (0.0..=3_600_000.0).contains(&x) {
                Ok((x * 1e6) as u64)
            } else {
                Err(self.err(
                    v.span(),
                    &k(key),
                    format!("must be in [0, 3600000], got {x}"),
                ))
            }
        };
        Ok(Some(Stall {
            kind,
            at_ns: ms(at, "stall_at_ms")?,
            for_ns: ms(len, "stall_ms")?,
            printk: t.stall_printk.as_ref().is_some_and(|v| *v.get_ref()),
        }))
    }

    fn level(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Level,
    ) -> Result<Level, InputError> {
        match v {
            None => Ok(default),
            Some(v) => Level::by_name(v.get_ref()).ok_or_else(|| {
                self.err(
                    v.span(),
                    key,
                    format!(
                        "unknown level `{}`, expected one of emerg, alert, crit, err, warning, notice, info, debug",
                        v.get_ref()
                    ),
                )
            }),
        }
    }

    fn len_range(
        &self,
        v: &Option<Spanned<Vec<i64>>>,
        key: &str,
        default: (usize, usize),
    ) -> Result<(usize, usize), InputError> {
        let Some(v) = v else { return Ok(default) };
        match v.get_ref().as_slice() {
            &[lo, hi] if 1 <= lo && lo <= hi && hi <= klog::record::TEXT_MAX as i64 => {
                Ok((lo as usize, hi as usize))
            }
            _ => Err(self.err(
                v.span(),
                key,
                format!(
                    "expected [min, max] with 1 <= min <= max <= {}",
                    klog::record::TEXT_MAX
                ),
            )),
        }
    }

    /// CPUs a selector names, each checked against `cpus`.
    fn cpu_set(
        &self,
        v: &Spanned<CpuSel>,
        key: &str,
        cpus: usize,
        why: &str,
    ) -> Result<Vec<usize>, InputError> {
        let bad = |m: String| self.err(v.span(), key, m);
        let check = |i: i64| -> Result<usize, InputError> {
            if i < 0 || i as usize >= cpus {
                Err(bad(format!(
                    "CPU {i} is out of range: the machine has {cpus} CPU(s){why}"
                )))
            } else {
                Ok(i as usize)
            }
        };
        match v.get_ref() {
            CpuSel::One(i) => Ok(vec![check(*i)?]),
            CpuSel::List(l) if !l.is_empty() => l.iter().map(|&i| check(i)).collect(),
            CpuSel::List(_) => Err(bad("an empty list names no CPU".into())),
            CpuSel::Text(t) if t == "all" => Ok((0..cpus).collect()),
            CpuSel::Text(t) => {
                let parsed = t.split_once('-').and_then(|(a, b)| {
                    Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?))
                });
                match parsed {
                    Some((a, b)) if a <= b => {
                        check(a)?;
                        check(b)?;
                        Ok((a as usize..=b as usize).collect())
                    }
                    _ => Err(bad(format!("`{t}` is not \"all\" or a range like \"0-3\""))),
                }
            }
        }
    }

    /// Apply `o` and check everything; the result is ready to run.
    pub fn plan(&self, o: &Overrides) -> Result<Plan, InputError> {
        let r = &self.raw;
        if r.name.get_ref().trim().is_empty() {
            return Err(self.err(r.name.span(), "name", "must not be empty"));
        }
        let (cpus, why) = self.cpus(o)?;
        let duration_ms: u64 = match o.duration_ms {
            Some(n) if (1..=600_000).contains(&n) => n,
            Some(n) => {
                return Err(InputError::option(
                    "--duration-ms",
                    format!("must be from 1 to 600000, got {n}"),
                ))
            }
            None => self.int(&r.duration_ms, "duration_ms", 1, 600_000)?,
        };
        let seed = match (o.seed, &r.seed) {
            (Some(s), _) => s,
            (None, Some(s)) => self.int(s, "seed", 0, i64::MAX)?,
            (None, None) => 1,
        };

        let (declared, designs) = self.designs(o)?;
        let m = self.machine_keys()?;
        let (threshold_ms, on_deadlock, hard_limit_ms) =
            self.watchdog_keys(duration_ms, m.time_scale)?;
        let tasks = self.tasks(cpus, why)?;
        let nmis = self.sources(cpus, why, &declared)?;
        let expect = self.expectations()?;
        Ok(Plan {
            name: r.name.get_ref().clone(),
            summary: r.summary.clone(),
            cpus,
            duration_ms,
            seed,
            designs,
            time_scale: m.time_scale,
            hz: m.hz,
            baud: m.baud,
            buffer_size: m.buffer_size,
            threshold_ms,
            on_deadlock,
            hard_limit_ms,
            tasks,
            nmis,
            expect,
            reader_hz: m.reader_hz,
            timeline: false,
            census: false,
            settle_ms: None,
        })
    }

    /// The number of CPUs (the file's or `--cpus`), and what to add to a
    /// message about a CPU out of range.
    fn cpus(&self, o: &Overrides) -> Result<(usize, &'static str), InputError> {
        let r = &self.raw;
        let cpus: usize = match o.cpus {
            Some(n) if (1..=MAX_CPUS as usize).contains(&n) => n,
            Some(n) => {
                return Err(InputError::option(
                    "--cpus",
                    format!("must be from 1 to {MAX_CPUS}, got {n}{CPUS_WHY}"),
                ))
            }
            None => self.int(&r.cpus, "cpus", 1, MAX_CPUS).map_err(|mut e| {
                e.message.push_str(CPUS_WHY);
                e
            })?,
        };
        let why = if o.cpus.is_some() {
            " (set by --cpus)"
        } else {
            ""
        };
        Ok((cpus, why))
    }

    /// The designs the file names (every design if none; checked even when
    /// `--design` replaces them), and the designs that run.
    #[allow(clippy::type_complexity)]
    fn designs(
        &self,
        o: &Overrides,
    ) -> Result<(Vec<&'static DesignInfo>, Vec<&'static DesignInfo>), InputError> {
        let r = &self.raw;
        let mut declared: Vec<&'static DesignInfo> = Vec::new();
        if let Some(list) = &r.designs {
            if list.get_ref().is_empty() {
                return Err(self.err(list.span(), "designs", "must name at least one design"));
            }
            for name in list.get_ref() {
                let d = printk::design(name.get_ref()).ok_or_else(|| {
                    self.err(
                        name.span(),
                        "designs",
                        format!(
                            "unknown design `{}` (known: {})",
                            name.get_ref(),
                            design_names()
                        ),
                    )
                })?;
                if declared.iter().any(|x| x.name == d.name) {
                    return Err(self.err(
                        name.span(),
                        "designs",
                        format!("`{}` listed twice", d.name),
                    ));
                }
                declared.push(d);
            }
        } else {
            declared = printk::DESIGNS.iter().collect();
        }
        let mut designs: Vec<&'static DesignInfo> = Vec::new();
        for name in &o.designs {
            let d = printk::design(name).ok_or_else(|| {
                InputError::option(
                    "--design",
                    format!("unknown design `{name}` (known: {})", design_names()),
                )
            })?;
            if designs.iter().any(|x| x.name == d.name) {
                return Err(InputError::option(
                    "--design",
                    format!("`{name}` given twice"),
                ));
            }
            designs.push(d);
        }
        if designs.is_empty() {
            designs = declared.clone();
        }

        Ok((declared, designs))
    }

    /// The machine's keys: time scale, tick rate, console, reader, buffer.
    fn machine_keys(&self) -> Result<MachineKeys, InputError> {
        let r = &self.raw;
        let time_scale = match &r.time_scale {
            None => 0.01,
            Some(v) => {
                let x = v.get_ref().get();
                if !(x > 0.0 && x <= 1.0) {
                    return Err(self.err(
                        v.span(),
                        "time_scale",
                        format!("must be in (0, 1], got {x}"),
                    ));
                }
                x
            }
        };
        let hz: u32 = self.opt_int(&r.hz, "hz", 1, 10_000, 250)?;
        let console = r.console.as_ref();
        let baud: u32 = self.opt_int(
            &console.and_then(|c| c.baud.clone()),
            "console.baud",
            0,
            10_000_000,
            115_200,
        )?;
        let reader_hz: u32 = match &r.reader {
            None => 0,
            Some(rd) => self.int(&rd.hz, "reader.hz", 1, 1_000_000)?,
        };
        let buffer_size: usize = match r.buffer.as_ref().and_then(|b| b.size.as_ref()) {
            None => 131_072,
            Some(v) => {
                let x = *v.get_ref();
                if !(4096..=1 << 26).contains(&x) || (x as u64).count_ones() != 1 {
                    return Err(self.err(
                        v.span(),
                        "buffer.size",
                        format!("must be a power of two from 4096 to 67108864, got {x}"),
                    ));
                }
                x as usize
            }
        };
        Ok(MachineKeys {
            time_scale,
            hz,
            baud,
            reader_hz,
            buffer_size,
        })
    }

    /// `[watchdog]`: threshold, what to do about a deadlock, hard limit.
    fn watchdog_keys(
        &self,
        duration_ms: u64,
        time_scale: f64,
    ) -> Result<(f64, OnDeadlock, u64), InputError> {
        let r = &self.raw;
        let wd = r.watchdog.as_ref();
        let threshold_ms = match wd.and_then(|w| w.threshold_ms.as_ref()) {
            None => 10_000.0 * time_scale,
            Some(v) => {
                let x = v.get_ref().get();
                if !(1.0..=600_000.0).contains(&x) {
                    return Err(self.err(
                        v.span(),
                        "watchdog.threshold_ms",
                        format!("must be from 1 to 600000, got {x}"),
                    ));
                }
                x
            }
        };
        let on_deadlock = match wd.and_then(|w| w.on_deadlock.as_ref()) {
            None => OnDeadlock::Break,
            Some(v) => match v.get_ref().as_str() {
                "break" => OnDeadlock::Break,
                "stop" => OnDeadlock::Stop,
                "off" => OnDeadlock::Off,
                other => {
                    return Err(self.err(
                        v.span(),
                        "watchdog.on_deadlock",
                        format!("unknown action `{other}`, expected break, stop or off"),
                    ))
                }
            },
        };
        let default_limit = duration_ms + (20.0 * threshold_ms).max(1000.0) as u64;
        let hard_limit_ms = match wd.and_then(|w| w.hard_limit_ms.as_ref()) {
            None => default_limit,
            Some(v) => {
                let x = *v.get_ref();
                if x <= duration_ms as i64 || x > 3_600_000 {
                    return Err(self.err(
                        v.span(),
                        "watchdog.hard_limit_ms",
                        format!("must be longer than duration_ms ({duration_ms}) and at most 3600000, got {x}"),
                    ));
                }
                x as u64
            }
        };

        Ok((threshold_ms, on_deadlock, hard_limit_ms))
    }

    /// `[[task]]`: per CPU, its load, if any.
    fn tasks(&self, cpus: usize, why: &str) -> Result<Vec<Option<TaskSpec>>, InputError> {
        let r = &self.raw;
        let mut tasks: Vec<Option<TaskSpec>> = vec![None; cpus];
        for (i, t) in r.task.iter().enumerate() {
            let k = |f: &str| format!("task[{i}].{f}");
            let spec = TaskSpec {
                printk_hz: self.opt_int(&t.printk_hz, &k("printk_hz"), 0, 1_000_000, 1000)?,
                len: self.len_range(&t.len, &k("len"), (16, 120))?,
                level: self.level(&t.level, &k("level"), Level::Info)?,
                pieces: self.opt_int(&t.pieces, &k("pieces"), 1, 16, 1)?,
                count: self.opt_int(&t.count, &k("count"), 0, i64::MAX, 0)?,
                stall: self.stall(t, &k)?,
            };
            for cpu in self.cpu_set(&t.cpus, &k("cpus"), cpus, why)? {
                if tasks[cpu].is_some() {
                    return Err(self.err(
                        t.cpus.span(),
                        &k("cpus"),
                        format!("CPU {cpu} already has a [[task]]"),
                    ));
                }
                tasks[cpu] = Some(spec);
            }
        }

        Ok(tasks)
    }

    /// `[[nmi]]` then `[[irq]]`, in file order.
    fn sources(
        &self,
        cpus: usize,
        why: &str,
        declared: &[&'static DesignInfo],
    ) -> Result<Vec<NmiSource>, InputError> {
        let r = &self.raw;
        let nmis = r.nmi.iter().map(|n| (Interrupt::Nmi, n)).enumerate();
        let irqs = r.irq.iter().map(|n| (Interrupt::Irq, n)).enumerate();
        nmis.chain(irqs)
            .map(|(i, (interrupt, n))| {
                self.nmi_source(&Entry {
                    n,
                    interrupt,
                    i,
                    cpus,
                    why,
                    designs: declared,
                })
            })
            .collect()
    }

    /// `[expect]`: a known outcome for a known design.
    fn expectations(&self) -> Result<Vec<(&'static str, Outcome)>, InputError> {
        let r = &self.raw;
        let mut expect = Vec::new();
        for (design, outcome) in r.expect.iter().flatten() {
            let key = format!("expect.{design}");
            let d = printk::design(design).ok_or_else(|| {
                self.err(
                    outcome.span(),
                    &key,
                    format!("unknown design `{design}` (known: {})", design_names()),
                )
            })?;
            let out = Outcome::by_name(outcome.get_ref()).ok_or_else(|| {
                self.err(
                    outcome.span(),
                    &key,
                    format!(
                        "unknown outcome `{}`, expected timeout, deadlock, lockup, loss or clean",
                        outcome.get_ref()
                    ),
                )
            })?;
            expect.push((d.name, out));
        }

        Ok(expect)
    }

    /// One `[[nmi]]` or `[[irq]]` entry (`i`): its keys checked against
    /// what its kind and action take, then its targets, action and
    /// trigger, each parsed on its own.
    fn nmi_source(&self, e: &Entry<'_>) -> Result<NmiSource, InputError> {
        let (n, k) = (e.n, |f: &str| e.key(f));
        let kind = SourceKind::by_name(n.kind.get_ref()).ok_or_else(|| {
            self.err(
                n.kind.span(),
                &k("kind"),
                format!(
                    "unknown kind `{}`, expected {}",
                    n.kind.get_ref(),
                    SourceKind::ALL.map(SourceKind::name).join(", ")
                ),
            )
        })?;
        let action = self.action_kind(e, kind)?;
        self.check_keys(e, kind, action)?;
        let targets = self.targets(e, kind)?;
        let action = self.action(e, action)?;
        let (trigger, default_times) = self.trigger(e, kind, targets)?;
        let times: u64 = self.opt_int(&n.times, &k("times"), 0, i64::MAX, default_times)?;
        // A detector asks from its timer tick; the answers are NMIs.
        let interrupt = if matches!(action, NmiAction::BacktraceAll(_)) {
            Interrupt::Irq
        } else {
            e.interrupt
        };
        Ok(NmiSource {
            interrupt,
            trigger,
            targets,
            times,
            action,
        })
    }

    /// The entry's action: its own for the kinds that have one, else the
    /// `action` key (default `printk`).
    fn action_kind(&self, e: &Entry<'_>, kind: SourceKind) -> Result<ActionKind, InputError> {
        let (n, k) = (e.n, |f: &str| e.key(f));
        if let Some(own) = kind.own_action() {
            return match &n.action {
                Some(a) => Err(self.err(
                    a.span(),
                    &k("action"),
                    format!("kind `{}` has its own action", kind.name()),
                )),
                None => Ok(own),
            };
        }
        let Some(a) = &n.action else {
            return Ok(ActionKind::Printk);
        };
        let action = ActionKind::by_name(a.get_ref()).ok_or_else(|| {
            self.err(
                a.span(),
                &k("action"),
                format!(
                    "unknown action `{}`, expected {}",
                    a.get_ref(),
                    ActionKind::ALL.map(ActionKind::name).join(", ")
                ),
            )
        })?;
        if e.interrupt == Interrupt::Irq && action == ActionKind::Backtrace {
            return Err(self.err(a.span(), &k("action"), "backtrace applies to NMIs only"));
        }
        Ok(action)
    }

    /// Every key given must be one the kind or the action takes: nothing is
    /// silently ignored.
    fn check_keys(
        &self,
        e: &Entry<'_>,
        kind: SourceKind,
        action: ActionKind,
    ) -> Result<(), InputError> {
        for (key, span) in e.n.given() {
            if kind.keys().contains(&key) || action.keys().contains(&key) {
                continue;
            }
            let message = match (key, kind) {
                ("cpu", SourceKind::BacktraceAll | SourceKind::RcuStall) => format!(
                    "kind `{}` goes to every other CPU; say who asks with `from_cpu`",
                    kind.name()
                ),
                ("stop_at", _) => "applies to a panic only (kind or action `panic`)".to_string(),
                ("serialize", _) => {
                    "applies to backtraces only (backtrace, backtrace_all, rcu_stall)".to_string()
                }
                ("dump" | "land_at" | "exclude_self", _) => {
                    "applies to all-CPU backtraces only (backtrace_all, rcu_stall)".to_string()
                }
                _ => format!(
                    "does not apply to kind `{}` with action `{}` (they take: {})",
                    kind.name(),
                    action.name(),
                    kind.keys()
                        .iter()
                        .chain(action.keys())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(self.err(span, &e.key(key), message));
        }
        Ok(())
    }

    /// The CPUs the entry's interrupts go to.
    fn targets(&self, e: &Entry<'_>, kind: SourceKind) -> Result<Targets, InputError> {
        let (n, k, cpus, why) = (e.n, |f: &str| e.key(f), e.cpus, e.why);
        if matches!(kind, SourceKind::BacktraceAll | SourceKind::RcuStall) {
            // The requester; the NMIs go to the others.
            return Ok(Targets::One(match &n.from_cpu {
                Some(f) => self
                    .int(f, &k("from_cpu"), 0, cpus as i64 - 1)
                    .map_err(|mut e| {
                        e.message.push_str(why);
                        e
                    })?,
                None => 0,
            }));
        }
        let Some(v) = &n.cpu else {
            return Ok(Targets::One(0));
        };
        match v.get_ref() {
            CpuSel::Text(t) if t == "all" && kind != SourceKind::Panic => Ok(Targets::All),
            CpuSel::One(_) => Ok(Targets::One(
                self.cpu_set(v, &k("cpu"), cpus, why)?
                    .first()
                    .copied()
                    .unwrap_or(0),
            )),
            _ if kind == SourceKind::Panic => Err(self.err(
                v.span(),
                &k("cpu"),
                "expected one CPU index: one CPU panics",
            )),
            _ => Err(self.err(v.span(), &k("cpu"), "expected one CPU index or \"all\"")),
        }
    }

    /// What the handler does.
    fn action(&self, e: &Entry<'_>, action: ActionKind) -> Result<NmiAction, InputError> {
        let (n, k) = (e.n, |f: &str| e.key(f));
        Ok(match action {
            ActionKind::Printk => NmiAction::Printk {
                lines: self.opt_int(&n.lines, &k("lines"), 0, 100_000, 1)?,
                len: self.len_range(&n.len, &k("len"), (40, 80))?,
                level: self.level(&n.level, &k("level"), Level::Warning)?,
            },
            ActionKind::Backtrace => NmiAction::Backtrace {
                serialize: n.serialize.as_ref().is_some_and(|v| *v.get_ref()),
            },
            ActionKind::BacktraceAll => NmiAction::BacktraceAll(self.dump(e, false)?),
            ActionKind::RcuStall => NmiAction::BacktraceAll(self.dump(e, true)?),
            ActionKind::Warn => NmiAction::Warn,
            ActionKind::Panic => NmiAction::Panic {
                stop_at: self.stop_at(e)?,
            },
            ActionKind::Hang => NmiAction::Hang,
            ActionKind::Nothing => NmiAction::Nothing,
        })
    }

    /// When the entry fires, and how many times by default (0: no limit).
    fn trigger(
        &self,
        e: &Entry<'_>,
        kind: SourceKind,
        targets: Targets,
    ) -> Result<(Trigger, u64), InputError> {
        let (n, k) = (e.n, |f: &str| e.key(f));
        let needs = |key: &str| {
            self.err(
                n.kind.span(),
                &k(key),
                format!("kind `{}` needs `{key}`", kind.name()),
            )
        };
        match kind {
            SourceKind::AtPoint => {
                let p = n.point.as_ref().ok_or_else(|| needs("point"))?;
                let point = self.design_point(p, &k("point"), e.designs)?;
                let hit_on = self.hit_on(e, targets)?;
                let nth: u64 = self.opt_int(&n.nth, &k("nth"), 1, i64::MAX, 1)?;
                let wait = n.wait.as_ref().is_some_and(|w| *w.get_ref());
                let hold = n.hold.as_ref().is_some_and(|w| *w.get_ref());
                let context = match &n.context {
                    None => None,
                    Some(c) => Some(
                        [Context::Task, Context::Softirq, Context::Hardirq]
                            .into_iter()
                            .find(|x| x.name() == c.get_ref())
                            .ok_or_else(|| {
                                self.err(
                                    c.span(),
                                    &k("context"),
                                    format!(
                                        "must be \"task\", \"softirq\" or \"hardirq\" (an NMI cannot land inside an NMI), got \"{}\"",
                                        c.get_ref()
                                    ),
                                )
                            })?,
                    ),
                };
                let trigger = Trigger::AtPoint {
                    point,
                    hit_on,
                    nth,
                    wait,
                    hold,
                    hold_limit_ns: 0,
                    context,
                    after: None,
                };
                Ok((trigger, 1))
            }
            SourceKind::Periodic => {
                let p = n.period_us.as_ref().ok_or_else(|| needs("period_us"))?;
                let us: u64 = self.int(p, &k("period_us"), 1, 60_000_000)?;
                Ok((
                    Trigger::Periodic {
                        period_ns: us * 1000,
                    },
                    0,
                ))
            }
            SourceKind::Random => {
                let r = n.rate_hz.as_ref().ok_or_else(|| needs("rate_hz"))?;
                let x = r.get_ref().get();
                if !(x > 0.0 && x <= 1_000_000.0) {
                    let message = format!("must be in (0, 1000000], got {x}");
                    return Err(self.err(r.span(), &k("rate_hz"), message));
                }
                Ok((Trigger::Random { rate_hz: x }, 0))
            }
            SourceKind::BacktraceAll | SourceKind::RcuStall | SourceKind::Panic => {
                let at = n.at_ms.as_ref().ok_or_else(|| needs("at_ms"))?;
                let x = at.get_ref().get();
                if !(x.is_finite() && (0.0..=3_600_000.0).contains(&x)) {
                    let message = format!("must be in [0, 3600000], got {x}");
                    return Err(self.err(at.span(), &k("at_ms"), message));
                }
                Ok((
                    Trigger::At {
                        at_ns: (x * 1e6) as u64,
                    },
                    1,
                ))
            }
        }
    }

    /// Whose passing of an `at_point` source's point fires it: a CPU, or
    /// nbcon's printer thread (which calls itself CPU `cpus`, see
    /// machine/printer.rs); by default the one target.
    fn hit_on(&self, e: &Entry<'_>, targets: Targets) -> Result<usize, InputError> {
        let (n, k, cpus) = (e.n, |f: &str| e.key(f), e.cpus);
        match (&n.hit_on, targets) {
            (Some(h), _) => match h.get_ref() {
                CpuSel::Text(t) if t == "printer" => {
                    if e.designs.iter().any(|d| d.kind == DesignKind::Nbcon) {
                        Ok(cpus)
                    } else {
                        Err(self.err(h.span(), &k("hit_on"), "only nbcon has a printer thread"))
                    }
                }
                CpuSel::One(_) => Ok(self
                    .cpu_set(h, &k("hit_on"), cpus, e.why)?
                    .first()
                    .copied()
                    .unwrap_or(0)),
                _ => Err(self.err(
                    h.span(),
                    &k("hit_on"),
                    "expected one CPU index or \"printer\"",
                )),
            },
            (None, Targets::One(c)) => Ok(c),
            (None, Targets::All | Targets::Nobody) => Err(self.err(
                n.kind.span(),
                &k("hit_on"),
                "with cpu = \"all\", say which CPU's passing fires it",
            )),
        }
    }
}

klog::named_enum! {
    /// The kinds of `[[nmi]]`/`[[irq]]` entries: when they fire.
    enum SourceKind {
        AtPoint = "at_point", Periodic = "periodic", Random = "random",
        BacktraceAll = "backtrace_all", RcuStall = "rcu_stall", Panic = "panic",
    }
}

impl SourceKind {
    /// The keys this kind takes, besides `kind` and its action's keys.
    fn keys(self) -> &'static [&'static str] {
        match self {
            SourceKind::AtPoint => &[
                "point", "cpu", "hit_on", "nth", "wait", "hold", "context", "times", "action",
            ],
            SourceKind::Periodic => &["period_us", "cpu", "times", "action"],
            SourceKind::Random => &["rate_hz", "cpu", "times", "action"],
            SourceKind::BacktraceAll | SourceKind::RcuStall => &["at_ms", "from_cpu"],
            SourceKind::Panic => &["at_ms", "cpu"],
        }
    }

    /// The kinds that are their own action.
    fn own_action(self) -> Option<ActionKind> {
        match self {
            SourceKind::BacktraceAll => Some(ActionKind::BacktraceAll),
            SourceKind::RcuStall => Some(ActionKind::RcuStall),
            SourceKind::Panic => Some(ActionKind::Panic),
            _ => None,
        }
    }
}

klog::named_enum! {
    /// What an `[[nmi]]`/`[[irq]]` handler does.
    enum ActionKind {
        Printk = "printk", Backtrace = "backtrace", BacktraceAll = "backtrace_all",
        RcuStall = "rcu_stall", Warn = "warn", Panic = "panic", Hang = "hang", Nothing = "none",
    }
}

impl ActionKind {
    /// The keys this action takes.
    fn keys(self) -> &'static [&'static str] {
        match self {
            ActionKind::Printk => &["lines", "len", "level"],
            ActionKind::BacktraceAll | ActionKind::RcuStall => {
                &["dump", "serialize", "land_at", "exclude_self"]
            }
            ActionKind::Panic => &["stop_at"],
            ActionKind::Backtrace => &["serialize"],
            ActionKind::Warn | ActionKind::Hang | ActionKind::Nothing => &[],
        }
    }
}

impl Scenario {
    /// A panic source's `stop_at`: a point some design of the scenario
    /// passes.
    fn stop_at(&self, e: &Entry<'_>) -> Result<Option<point::Point>, InputError> {
        e.n.stop_at
            .as_ref()
            .map(|v| self.design_point(v, &e.key("stop_at"), e.designs))
            .transpose()
    }

    /// The point named by `v` (at key `key`), which some design of the
    /// scenario must pass.
    fn design_point(
        &self,
        v: &Spanned<String>,
        key: &str,
        designs: &[&'static DesignInfo],
    ) -> Result<point::Point, InputError> {
        let point = point::by_name(v.get_ref()).ok_or_else(|| {
            self.err(
                v.span(),
                key,
                format!(
                    "unknown point `{}` (`printk-sim list --points` lists them)",
                    v.get_ref()
                ),
            )
        })?;
        if !designs.iter().any(|d| d.has_point(point)) {
            let names: Vec<&str> = designs.iter().map(|d| d.name).collect();
            return Err(self.err(
                v.span(),
                key,
                format!(
                    "no design of this scenario ({}) passes point `{}`",
                    names.join(", "),
                    point.name
                ),
            ));
        }
        Ok(point)
    }
}

fn design_names() -> String {
    printk::DESIGNS
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}
