//! How text meets the terminal: its width, words wrapped to it, and colour
//! for the words that matter (written through `anstream`, which drops the
//! colour when stdout is not a terminal, `NO_COLOR` is set or `--color
//! never` was given).

use anstyle::{AnsiColor, Style};

use crate::outcome::Outcome;

/// The width output is laid out for when stdout is not a terminal and
/// `COLUMNS` is not set.
pub const DEFAULT_WIDTH: usize = 100;

/// The narrowest width a layout is made for.
pub const MIN_WIDTH: usize = 60;

/// The width to lay stdout out for: `COLUMNS` when set to a number, the
/// terminal's width when stdout is one, [`DEFAULT_WIDTH`] otherwise; never
/// under [`MIN_WIDTH`].
pub fn width() -> usize {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok());
    // Only stdout's own terminal counts: output redirected to a file or a
    // pager is laid out for 100 columns, whatever stderr is.
    let from_tty = || {
        let out = std::io::stdout();
        if std::io::IsTerminal::is_terminal(&out) {
            terminal_size::terminal_size_of(out).map(|(w, _)| usize::from(w.0))
        } else {
            None
        }
    };
    from_env
        .or_else(from_tty)
        .unwrap_or(DEFAULT_WIDTH)
        .max(MIN_WIDTH)
}

/// `text` wrapped at spaces to lines of at most `width` characters, every
/// line after the first indented by `indent` spaces. A word longer than a
/// line stays whole on its own line.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    wrap_from(text, 0, width, indent)
}

/// [`wrap`] for text that goes on a line already `start` characters long
/// (its first word goes right there).
pub fn wrap_from(text: &str, start: usize, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut col = start;
    let mut first = true;
    for word in words(text) {
        let n = word.chars().count();
        if !first && col + 1 + n > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if !first {
            out.push(' ');
            col += 1;
        }
        out.push_str(&word);
        col += n;
        first = false;
    }
    out
}

/// The words of `text`, a number kept together with its unit ("100.3 ms").
fn words(text: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for w in text.split(' ').filter(|w| !w.is_empty()) {
        let unit = matches!(
            w.trim_end_matches([',', '.', ';', ')']),
            "ns" | "µs" | "ms" | "s"
        );
        match v.last_mut() {
            Some(prev) if unit && prev.parse::<f64>().is_ok() => {
                prev.push(' ');
                prev.push_str(w);
            }
            _ => v.push(w.to_string()),
        }
    }
    v
}

/// Every line of `text` longer than `width` wrapped, its continuation lines
/// indented two more than the line itself; shorter lines (the kernel's own
/// reports among them) left as they are.
pub fn wrap_lines(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.chars().count() <= width {
            out.push_str(line);
        } else {
            let body = line.trim_start_matches(' ');
            let lead = line.len() - body.len();
            out.push_str(&" ".repeat(lead));
            out.push_str(&wrap_from(body, lead, width, lead + 2));
        }
        out.push('\n');
    }
    out
}

/// `text` with its first word (`len` bytes) in `style`.
pub fn paint_first(text: &str, len: usize, style: Style) -> String {
    let (word, rest) = text.split_at(len.min(text.len()));
    format!("{}{rest}", paint(word, style))
}

/// A duration for a table: µs below 10 ms, ms from there.
pub fn us(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

/// A duration in ms, one decimal.
pub fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// `text` in `style` (the escapes are dropped on the way out when colour is
/// off).
pub fn paint(text: &str, style: Style) -> String {
    format!("{style}{text}{style:#}")
}

/// The colour of an outcome: red for the ones that hang, yellow for loss,
/// green for clean.
pub fn outcome_style(o: Outcome) -> Style {
    let colour = match o {
        Outcome::Clean => AnsiColor::Green,
        Outcome::Loss => AnsiColor::Yellow,
        Outcome::Lockup | Outcome::Deadlock | Outcome::Timeout => AnsiColor::Red,
    };
    Style::new().bold().fg_color(Some(colour.into()))
}

/// The style of a finding's kind in a list.
pub fn finding_style() -> Style {
    Style::new().fg_color(Some(AnsiColor::Red.into()))
}

#[cfg(test)]
mod tests {
    use super::{wrap, wrap_from, wrap_lines};

    #[test]
    fn wrap_breaks_at_spaces_and_indents_what_follows() {
        assert_eq!(wrap("aa bb cc dd", 5, 2), "aa bb\n  cc\n  dd");
        assert_eq!(wrap("aa bb", 80, 4), "aa bb");
        assert_eq!(wrap("at 100.3 ms.", 10, 0), "at\n100.3 ms.");
        assert_eq!(wrap("a verylongword b", 6, 1), "a\n verylongword\n b");
        assert_eq!(wrap_from("bb cc", 3, 6, 1), "bb\n cc");
        assert_eq!(
            wrap_lines("short\n  aa bb cc\n", 8),
            "short\n  aa bb\n    cc\n"
        );
    }
}
