//! Sweeps past one machine: the JSON-lines file a shard appends to as each
//! run or cell ends (`--jsonl`), carrying on from it (`--resume`), and
//! putting the shards back together (`merge`).
//!
//! A file is a header line (`{"sweep": {...}}`: which scenario, which
//! designs, which command, which shard, which version), then one line per
//! piece of work: `{"run": {...}}` (a run's view, as in the JSON report),
//! `{"census": {...}}` and `{"cell": {...}}` (explore). Lines are written
//! whole and flushed one at a time, so a shard killed mid-run loses the
//! run in flight and nothing else.
//!
//! Invariant: `merge` accepts only shards of one sweep (headers equal but
//! for the shard's index), every shard of it, and every piece of work
//! exactly once; anything else is bad input, said with the file and line.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use klog::printk::DesignInfo;
use klog::{Context, Point};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::explore::{self, Cell, CellOutcome, Census, Exploration, Place, Where};
use crate::outcome::{Outcome, Tally};
use crate::scenario::{InputError, Plan, Scenario};
use crate::shard::Shard;

/// What every line of a shard's file says about the sweep it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The version of printk-sim that wrote it.
    pub printk_sim: String,
    /// `run` or `explore`.
    pub command: String,
    /// The scenario's name.
    pub scenario: String,
    /// A hash of the scenario's text: two files of one name but other
    /// contents are not one sweep.
    pub digest: String,
    /// The designs, in order.
    pub designs: Vec<String>,
    /// The first seed (`run`), or every run's (`explore`).
    pub seed: u64,
    /// CPUs.
    pub cpus: usize,
    /// Run length.
    pub duration_ms: u64,
    /// The scenario's time scale.
    pub time_scale: f64,
    /// `run`: seeds per design, over all shards.
    pub repeat: Option<u64>,
    /// `explore`: what was explored.
    pub explore: Option<ExploreHead>,
    /// The command that does the whole sweep in one process, after
    /// `printk-sim` (what the reproduce line says).
    pub command_line: Vec<String>,
    /// Shard `[index, count]`, 1-based.
    pub shard: [u64; 2],
}

/// `explore`'s part of a header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExploreHead {
    /// The CPUs NMIs go to.
    pub cpus: Vec<usize>,
    /// The NMIs' action (`printk`, `backtrace`, ...).
    pub action: String,
    /// `--serialize`.
    pub serialize: bool,
    /// 1 or 2.
    pub depth: u8,
    /// Pairs per design at most.
    pub budget: usize,
}

impl Header {
    /// The header of `command` (`run` or `explore`) on `plan`, read from
    /// `scenario`, as shard `shard`; the command's own keys are left
    /// empty.
    pub fn new(command: &str, scenario: &Scenario, plan: &Plan, shard: Shard) -> Header {
        Header {
            printk_sim: env!("CARGO_PKG_VERSION").into(),
            command: command.into(),
            scenario: plan.name.clone(),
            digest: digest(scenario.text()),
            designs: plan.designs.iter().map(|d| d.name.to_string()).collect(),
            seed: plan.seed,
            cpus: plan.cpus,
            duration_ms: plan.duration_ms,
            time_scale: plan.time_scale,
            repeat: None,
            explore: None,
            command_line: Vec::new(),
            shard: [shard.index, shard.count],
        }
    }

    /// The shard this file is of.
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.shard[0],
            count: self.shard[1],
        }
    }

    /// The first field (as the file spells it) in which `other` is of
    /// another sweep, with both values.
    fn differs(&self, other: &Header) -> Option<(String, String, String)> {
        let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
            (serde_json::to_value(self), serde_json::to_value(other))
        else {
            return Some(("header".into(), String::new(), String::new()));
        };
        for (key, va) in &a {
            let vb = b.get(key).unwrap_or(&Value::Null);
            let same = if key == "shard" {
                va.get(1) == vb.get(1)
            } else {
                va == vb
            };
            if !same {
                return Some((key.clone(), va.to_string(), vb.to_string()));
            }
        }
        None
    }
}

/// A hash of a scenario's text (FNV-1a, hex): the same on every machine.
pub fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A place as a line spells it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlaceLine {
    /// The point's name.
    pub point: String,
    /// The CPU the NMI goes to.
    pub cpu: usize,
    /// `task`, `softirq`, `hardirq` or `printer`.
    pub at: String,
}

/// One cell of `explore`, as a line spells it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellLine {
    /// The design.
    pub design: String,
    /// One place, or two.
    pub places: Vec<PlaceLine>,
    /// What came of it.
    pub outcome: String,
    /// The first finding's title.
    pub finding: Option<String>,
    /// Why messages were lost.
    pub loss: Option<String>,
    /// What the run broke.
    pub broken: Option<String>,
    /// Its run's wall-clock time.
    pub wall_ms: f64,
}

/// One design's census, as a line spells it: enough to carry on without
/// taking it again, and for `merge` to know which cells to expect.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CensusLine {
    /// The design.
    pub design: String,
    /// The census run's outcome.
    pub baseline: String,
    /// `[point, cpu]` never seen passed.
    pub unseen: Vec<(String, usize)>,
    /// The cells this shard tries.
    pub todo: Vec<Vec<PlaceLine>>,
    /// Depth 2: pairs in all.
    pub pairs_total: usize,
    /// Depth 2: a sample.
    pub pairs_sampled: bool,
    /// The census run's wall-clock time.
    pub wall_ms: f64,
}

/// A line of a shard's file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Line {
    /// The header, first.
    Sweep(Header),
    /// A run's view (`run`), as the JSON report has it.
    Run(Value),
    /// A design's census (`explore`).
    Census(CensusLine),
    /// A cell (`explore`).
    Cell(CellLine),
    /// A unit of a report card (a scenario or an exploration), as the
    /// grading program writes and reads it.
    Unit(Value),
}

impl PlaceLine {
    /// The line of `p`.
    pub fn of(p: &Place) -> PlaceLine {
        PlaceLine {
            point: p.point.name.to_string(),
            cpu: p.cpu,
            at: p.at.name().to_string(),
        }
    }

    fn place(&self) -> Result<Place, String> {
        let point = point(&self.point)?;
        let at = if self.at == "printer" {
            Where::Printer
        } else {
            Where::Cpu(
                Context::by_name(&self.at)
                    .ok_or_else(|| format!("unknown context `{}`", self.at))?,
            )
        };
        Ok(Place {
            point,
            cpu: self.cpu,
            at,
        })
    }
}

fn point(name: &str) -> Result<Point, String> {
    klog::point::by_name(name).ok_or_else(|| format!("unknown point `{name}`"))
}

fn places(lines: &[PlaceLine]) -> Result<Vec<Place>, String> {
    lines.iter().map(PlaceLine::place).collect()
}

fn cell_outcome(name: &str) -> Result<CellOutcome, String> {
    CellOutcome::by_name(name).ok_or_else(|| format!("unknown outcome `{name}`"))
}

fn design(name: &str) -> Result<&'static DesignInfo, String> {
    klog::printk::design(name).ok_or_else(|| format!("unknown design `{name}`"))
}

impl CellLine {
    /// The line of `cell` of `design`, whose run took `wall_ms`.
    pub fn of(design: &str, cell: &Cell, wall_ms: f64) -> CellLine {
        CellLine {
            design: design.to_string(),
            places: cell.places.iter().map(PlaceLine::of).collect(),
            outcome: cell.outcome.name().to_string(),
            finding: cell.finding.clone(),
            loss: cell.loss.clone(),
            broken: cell.broken.clone(),
            wall_ms,
        }
    }

    /// The cell it holds.
    pub fn cell(&self) -> Result<Cell, String> {
        Ok(Cell {
            places: places(&self.places)?,
            outcome: cell_outcome(&self.outcome)?,
            finding: self.finding.clone(),
            loss: self.loss.clone(),
            tried: true,
            broken: self.broken.clone(),
        })
    }
}

impl CensusLine {
    /// The line of `census`, whose run took `wall_ms`.
    pub fn of(census: &Census, wall_ms: f64) -> CensusLine {
        CensusLine {
            design: census.design.name.to_string(),
            baseline: census.baseline.name().to_string(),
            unseen: census
                .unseen
                .iter()
                .map(|(p, cpu)| (p.name.to_string(), *cpu))
                .collect(),
            todo: census
                .todo
                .iter()
                .map(|c| c.iter().map(PlaceLine::of).collect())
                .collect(),
            pairs_total: census.pairs_total,
            pairs_sampled: census.pairs_sampled,
            wall_ms,
        }
    }

    /// The census it holds.
    pub fn census(&self) -> Result<Census, String> {
        Ok(Census {
            design: design(&self.design)?,
            baseline: cell_outcome(&self.baseline)?,
            unseen: self
                .unseen
                .iter()
                .map(|(p, cpu)| Ok((point(p)?, *cpu)))
                .collect::<Result<_, String>>()?,
            todo: self
                .todo
                .iter()
                .map(|c| places(c))
                .collect::<Result<_, String>>()?,
            pairs_total: self.pairs_total,
            pairs_sampled: self.pairs_sampled,
        })
    }
}

/// What the rates table needs of a run line.
#[derive(Deserialize)]
struct RunTally {
    design: String,
    seed: u64,
    outcome: String,
    interrupted: bool,
    findings: Vec<FindingTally>,
}

#[derive(Deserialize)]
struct FindingTally {
    title: String,
    at_ms: f64,
}

/// The tally of a run line.
pub fn tally(run: &Value) -> Result<Tally, String> {
    let t = RunTally::deserialize(run).map_err(|e| format!("not a run's view: {e}"))?;
    if t.interrupted {
        return Err("a run cut short by Ctrl-C (never written whole)".into());
    }
    Ok(Tally {
        outcome: Outcome::by_name(&t.outcome)
            .ok_or_else(|| format!("unknown outcome `{}`", t.outcome))?,
        design: t.design,
        seed: t.seed,
        first_at_ms: t.findings.first().map(|f| f.at_ms),
        titles: t.findings.into_iter().map(|f| f.title).collect(),
    })
}

/// An error at `line` of `path` (0: about the whole file).
pub fn file_error(path: &str, line: usize, message: impl Into<String>) -> InputError {
    InputError {
        file: path.to_string(),
        line,
        column: if line == 0 { 0 } else { 1 },
        key: String::new(),
        message: message.into(),
    }
}

/// One shard's file, read.
#[derive(Clone, Debug)]
pub struct ShardFile {
    /// Where it was read from.
    pub path: String,
    /// Its header.
    pub header: Header,
    /// The lines after it, with their 1-based line numbers.
    pub lines: Vec<(usize, Line)>,
}

/// Read a shard's file. A line cut short (the shard was killed as it
/// wrote it) is an error, unless `lenient` and it is the last, unended
/// line: then it is left out, and the returned length is where the whole
/// lines end.
pub fn read(path: &str, lenient: bool) -> Result<(ShardFile, u64), InputError> {
    let file =
        std::fs::File::open(path).map_err(|e| file_error(path, 0, format!("cannot read: {e}")))?;
    let mut reader = std::io::BufReader::new(file);
    let (mut header, mut lines, mut whole, mut n) = (None, Vec::new(), 0u64, 0usize);
    let mut buf = String::new();
    loop {
        buf.clear();
        let got = reader
            .read_line(&mut buf)
            .map_err(|e| file_error(path, n + 1, format!("cannot read: {e}")))?;
        if got == 0 {
            break;
        }
        n += 1;
        let ended = buf.ends_with('\n');
        match serde_json::from_str::<Line>(buf.trim_end()) {
            Ok(Line::Sweep(h)) if n == 1 => header = Some(h),
            Ok(_) if n == 1 => {
                return Err(file_error(
                    path,
                    1,
                    "no sweep header: not a printk-sim --jsonl file",
                ))
            }
            Ok(Line::Sweep(_)) => return Err(file_error(path, n, "a second sweep header")),
            Ok(line) if ended => lines.push((n, line)),
            result => {
                if lenient && !ended && n > 1 {
                    break;
                }
                let why = match result {
                    Err(e) if e.is_eof() || !ended => {
                        "a line cut short (the shard was killed as it wrote it? `--resume` carries on from the whole lines)".to_string()
                    }
                    Err(e) => format!("not a line printk-sim writes: {e}"),
                    Ok(_) => "a line cut short: no newline at its end".to_string(),
                };
                return Err(file_error(path, n, why));
            }
        }
        whole += got as u64;
    }
    let header = header.ok_or_else(|| file_error(path, 1, "empty: no sweep header"))?;
    Ok((
        ShardFile {
            path: path.to_string(),
            header,
            lines,
        },
        whole,
    ))
}

/// Lines of a shard's file, with their 1-based line numbers.
pub type Numbered = Vec<(usize, Line)>;

/// The file a shard appends its lines to.
pub struct Journal {
    file: std::fs::File,
    path: String,
}

impl Journal {
    /// Start `path` afresh with `header`.
    pub fn create(path: &str, header: &Header) -> Result<Journal, InputError> {
        let file = std::fs::File::create(path)
            .map_err(|e| InputError::option("--jsonl", format!("cannot create `{path}`: {e}")))?;
        let mut j = Journal {
            file,
            path: path.to_string(),
        };
        j.append(&Line::Sweep(header.clone()))
            .map_err(|e| InputError::option("--jsonl", e))?;
        Ok(j)
    }

    /// Carry on from `path`: its lines so far (a missing or empty file
    /// starts afresh). The file must be of this very sweep and shard; a
    /// last line cut short is cut off.
    pub fn resume(
        path: &str,
        header: &Header,
    ) -> Result<(Journal, Vec<(usize, Line)>), InputError> {
        // Nothing, or not even a whole header (killed as it began): afresh.
        let empty = std::fs::read(path).map_or(true, |b| !b.contains(&b'\n'));
        if empty {
            return Ok((Journal::create(path, header)?, Vec::new()));
        }
        let (done, whole) = read(path, true)?;
        if let Some((key, mine, theirs)) = header.differs(&done.header) {
            return Err(file_error(
                path,
                1,
                format!("`{key}` is {theirs} there but {mine} here: not this sweep (remove the file, or run without --resume)"),
            ));
        }
        if done.header.shard != header.shard {
            return Err(file_error(
                path,
                1,
                format!(
                    "written by shard {}, not {}",
                    done.header.shard(),
                    header.shard()
                ),
            ));
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(whole).map(|()| f))
            .map_err(|e| {
                InputError::option("--jsonl", format!("cannot append to `{path}`: {e}"))
            })?;
        let mut j = Journal {
            file,
            path: path.to_string(),
        };
        use std::io::Seek;
        j.file
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| InputError::option("--jsonl", format!("`{path}`: {e}")))?;
        Ok((j, done.lines))
    }

    /// Append `line`, whole, and flush it.
    pub fn append(&mut self, line: &Line) -> Result<(), String> {
        let mut text = serde_json::to_string(line).map_err(|e| e.to_string())?;
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| format!("writing {}: {e}", self.path))
    }
}

/// Shards put back together: the sweep's header (as shard 1 of 1) and
/// what one process would have made.
pub enum Merged {
    /// `run --repeat`: every run's tally and view, by seed then design.
    Runs {
        /// The sweep.
        header: Header,
        /// The tallies.
        tallies: Vec<Tally>,
        /// The runs' views.
        views: Vec<Value>,
    },
    /// `explore`.
    Explore {
        /// The sweep.
        header: Header,
        /// The exploration.
        exploration: Exploration,
    },
}

/// Read and merge shard files. Every problem found is returned (files of
/// other sweeps, shards missing, lines cut short, work missing or done
/// twice), each naming its file and line.
pub fn merge(paths: &[String]) -> Result<Merged, Vec<InputError>> {
    let (mut header, files) = read_shards(paths)?;
    header.shard = [1, 1];
    let mut errors = Vec::new();
    let merged = match header.command.as_str() {
        "explore" => merge_explore(header, &files, &mut errors),
        "run" => merge_runs(header, &files, &mut errors),
        _ => {
            return Err(vec![InputError::option(
                "merge",
                "these are a report card's shards: merge them with the grading program (`cargo run --example NAME -- merge FILE...`)",
            )])
        }
    };
    if errors.is_empty() {
        Ok(merged)
    } else {
        Err(errors)
    }
}

/// Read shard files: each whole, all of one sweep, every shard of it
/// once. The first file's header, and the files.
pub fn read_shards(paths: &[String]) -> Result<(Header, Vec<ShardFile>), Vec<InputError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match read(p, false) {
            Ok((f, _)) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    let Some(header) = files.first().map(|f| f.header.clone()) else {
        if errors.is_empty() {
            errors.push(InputError::option("merge", "no file to merge"));
        }
        return Err(errors);
    };
    check_headers(&files, &mut errors);
    if errors.is_empty() {
        Ok((header, files))
    } else {
        Err(errors)
    }
}

/// One sweep, every shard of it once.
fn check_headers(files: &[ShardFile], errors: &mut Vec<InputError>) {
    let Some(first) = files.first() else { return };
    for f in files.iter().skip(1) {
        if let Some((key, mine, theirs)) = f.header.differs(&first.header) {
            errors.push(file_error(
                &f.path,
                1,
                format!(
                    "not the sweep of {}: `{key}` is {mine} here, {theirs} there",
                    first.path
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return;
    }
    let count = first.header.shard[1];
    for index in 1..=count {
        let of: Vec<&ShardFile> = files
            .iter()
            .filter(|f| f.header.shard[0] == index)
            .collect();
        match of.as_slice() {
            [] => errors.push(InputError::option(
                "merge",
                format!("shard {index}/{count} is missing: no file of it was given"),
            )),
            [_] => {}
            [a, b, ..] => errors.push(file_error(
                &b.path,
                1,
                format!("shard {index}/{count} again (also {})", a.path),
            )),
        }
    }
}

fn merge_runs(header: Header, files: &[ShardFile], errors: &mut Vec<InputError>) -> Merged {
    let repeat = header.repeat.unwrap_or(0);
    let mut seen: Vec<(Tally, Value)> = Vec::new();
    // (design, seed) → where it was read: tens of thousands of runs.
    let mut at: HashMap<(String, u64), (String, usize)> = HashMap::new();
    for f in files {
        for (n, line) in &f.lines {
            let Line::Run(view) = line else {
                errors.push(file_error(&f.path, *n, "not a run's line in a `run` sweep"));
                continue;
            };
            let t = match tally(view) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(file_error(&f.path, *n, e));
                    continue;
                }
            };
            let offset = t.seed.wrapping_sub(header.seed);
            if !header.designs.contains(&t.design) || offset >= repeat {
                errors.push(file_error(
                    &f.path,
                    *n,
                    format!("{} seed {} is not part of this sweep", t.design, t.seed),
                ));
            } else if !f.header.shard().owns_offset(offset) {
                errors.push(file_error(
                    &f.path,
                    *n,
                    format!("seed {} is not shard {}'s", t.seed, f.header.shard()),
                ));
            } else if let Some((path, line)) = at.get(&(t.design.clone(), t.seed)) {
                errors.push(file_error(
                    &f.path,
                    *n,
                    format!("{} seed {} twice: also {path}:{line}", t.design, t.seed),
                ));
            } else {
                at.insert((t.design.clone(), t.seed), (f.path.clone(), *n));
                seen.push((t, view.clone()));
            }
        }
    }
    for d in &header.designs {
        let missing: Vec<String> = (header.seed..header.seed + repeat)
            .filter(|s| !at.contains_key(&(d.clone(), *s)))
            .map(|s| s.to_string())
            .collect();
        if !missing.is_empty() {
            errors.push(InputError::option(
                "merge",
                format!(
                    "{d}: {} of {repeat} seeds missing: {} (a shard stopped early? `--resume` carries it on)",
                    missing.len(),
                    abbreviate(&missing)
                ),
            ));
        }
    }
    let order = |t: &Tally| (t.seed, header.designs.iter().position(|d| *d == t.design));
    seen.sort_by_key(|(t, _)| order(t));
    let (tallies, views) = seen.into_iter().unzip();
    Merged::Runs {
        header,
        tallies,
        views,
    }
}

/// The first few of `items`, and how many more.
fn abbreviate(items: &[String]) -> String {
    let shown = items
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        format!("{shown} and {} more", items.len() - 10)
    } else {
        shown
    }
}

/// What one design's shards said, gathered.
struct DesignParts {
    census: Option<Census>,
    unseen: Vec<(Point, usize)>,
    expected: Vec<String>,
    cells: Vec<Cell>,
    /// Each cell's key → where it was read (thousands of cells).
    at: HashMap<String, (String, usize)>,
}

fn merge_explore(header: Header, files: &[ShardFile], errors: &mut Vec<InputError>) -> Merged {
    let head = header.explore.clone();
    let mut x = Exploration {
        scenario: header.scenario.clone(),
        seed: header.seed,
        action: head
            .as_ref()
            .map_or("printk", |h| explore::action_by_name(&h.action)),
        depth: head.as_ref().map_or(1, |h| h.depth),
        cpus: head.as_ref().map_or_else(Vec::new, |h| h.cpus.clone()),
        designs: Vec::new(),
        runs: 0,
        wall_s: 0.0,
        interrupted: false,
    };
    for name in &header.designs {
        let mut parts = DesignParts {
            census: None,
            unseen: Vec::new(),
            expected: Vec::new(),
            cells: Vec::new(),
            at: HashMap::new(),
        };
        for f in files {
            gather(f, name, &mut parts, &mut x, errors);
        }
        let Some(mut census) = parts.census else {
            continue;
        };
        for key in &parts.expected {
            if !parts.at.contains_key(key) {
                errors.push(InputError::option(
                    "merge",
                    format!("{name}: cell {key} missing (a shard stopped early? `--resume` carries it on)"),
                ));
            }
        }
        // What any shard's census saw and tried is not unseen.
        census.unseen = parts.unseen;
        census.unseen.sort_by_key(|(p, cpu)| (p.name, *cpu));
        census.unseen.dedup();
        let tried: HashSet<(&str, usize)> = parts
            .cells
            .iter()
            .filter_map(|c| match c.places.as_slice() {
                [p] => Some((p.point.name, p.cpu)),
                _ => None,
            })
            .collect();
        census
            .unseen
            .retain(|(p, cpu)| !tried.contains(&(p.name, *cpu)));
        x.designs.push(explore::assemble(&census, parts.cells));
    }
    Merged::Explore {
        header,
        exploration: x,
    }
}

/// Design `name`'s census and cells in shard file `f`, checked.
fn gather(
    f: &ShardFile,
    name: &str,
    parts: &mut DesignParts,
    x: &mut Exploration,
    errors: &mut Vec<InputError>,
) {
    let mut todo: Option<HashSet<String>> = None;
    for (n, line) in &f.lines {
        let result = match line {
            Line::Census(c) if c.design == *name => c.census().map(|census| {
                x.runs += 1;
                x.wall_s += c.wall_ms / 1e3;
                let keys: Vec<String> = census.todo.iter().map(|p| explore::cell_key(p)).collect();
                parts.expected.extend(keys.iter().cloned());
                parts.unseen.extend(census.unseen.iter().copied());
                todo = Some(keys.into_iter().collect());
                match &mut parts.census {
                    // The worst of the shards' baselines.
                    Some(have) => have.baseline = have.baseline.max(census.baseline),
                    None => parts.census = Some(census),
                }
            }),
            Line::Cell(c) if c.design == *name => c.cell().and_then(|cell| {
                let key = explore::cell_key(&cell.places);
                if !todo.as_ref().is_some_and(|t| t.contains(&key)) {
                    return Err(format!("cell {key} is not one this shard's census gave it"));
                }
                if let Some((path, line)) = parts.at.get(&key) {
                    return Err(format!("{name}: cell {key} twice: also {path}:{line}"));
                }
                x.runs += 1;
                x.wall_s += c.wall_ms / 1e3;
                parts.at.insert(key, (f.path.clone(), *n));
                parts.cells.push(cell);
                Ok(())
            }),
            Line::Run(_) => Err("a run's line in an `explore` sweep".into()),
            Line::Unit(_) => Err("a report card's line in an `explore` sweep".into()),
            _ => Ok(()),
        };
        if let Err(e) = result {
            errors.push(file_error(&f.path, *n, e));
        }
    }
    if todo.is_none() {
        errors.push(file_error(
            &f.path,
            0,
            format!("no census of {name}: the shard stopped before it (`--resume` carries it on)"),
        ));
    }
}
