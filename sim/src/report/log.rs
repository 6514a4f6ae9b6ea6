//! The records of a run as the kernel's own tools read them: the syslog
//! format (`dmesg -F FILE` reads it, `--level` filters it, `-x` decodes it)
//! and the /dev/kmsg format.

use std::fmt::Write as _;

use klog::Record;

fn prefix_value(r: &Record) -> u32 {
    u32::from(r.facility) << 3 | r.level as u32
}

/// `<N>[SSSSS.UUUUUU][CALLER] text`, one line per line of each record, the
/// caller id as `CONFIG_PRINTK_CALLER` prints it (`[%6s]` of `T<pid>` or
/// `C<cpu>`).
pub fn syslog(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        let us = r.ts_ns / 1000;
        for line in r.text.split('\n') {
            let _ = writeln!(
                out,
                "<{}>[{:5}.{:06}][{:>6}] {line}",
                prefix_value(r),
                us / 1_000_000,
                us % 1_000_000,
                r.caller.to_string()
            );
        }
    }
    out
}

/// `N,seq,usec,flag,caller=ID;text`, one record per line, with every byte
/// below 0x20, from 0x7f, and the backslash escaped as `\xNN`; the flag is
/// `c` for a continuation fragment, `-` otherwise.
pub fn kmsg(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        let flag = if r.cont { 'c' } else { '-' };
        let _ = write!(
            out,
            "{},{},{},{flag},caller={};",
            prefix_value(r),
            r.seq,
            r.ts_ns / 1000,
            r.caller
        );
        for b in r.text.bytes() {
            if !(0x20..0x7f).contains(&b) || b == b'\\' {
                let _ = write!(out, "\\x{b:02x}");
            } else {
                out.push(char::from(b));
            }
        }
        out.push('\n');
    }
    out
}

/// `path` with `design` inserted before its suffix: `out.log` →
/// `out.legacy.log` (or appended when there is no suffix).
pub fn per_design(path: &str, design: &str) -> String {
    let p = std::path::Path::new(path);
    match (p.file_stem(), p.extension()) {
        (Some(stem), Some(ext)) => p
            .with_file_name(format!(
                "{}.{design}.{}",
                stem.to_string_lossy(),
                ext.to_string_lossy()
            ))
            .to_string_lossy()
            .into_owned(),
        _ => format!("{path}.{design}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klog::record::CallerId;
    use klog::{Context, Level};

    fn rec(text: &str, cont: bool) -> Record {
        Record {
            seq: 7,
            ts_ns: 1_234_567_891,
            cpu: 1,
            context: Context::Nmi,
            caller: CallerId::new(Context::Nmi, 1, 0),
            level: Level::Warning,
            facility: 0,
            text: text.into(),
            cont,
        }
    }

    #[test]
    fn formats_like_the_kernel() {
        assert_eq!(
            syslog(&[rec("hello", false)]),
            "<4>[    1.234567][    C1] hello\n"
        );
        assert_eq!(
            kmsg(&[rec("a\\b\tc\u{7f}", true)]),
            "4,7,1234567,c,caller=C1;a\\x5cb\\x09c\\x7f\n"
        );
        assert_eq!(per_design("out/x.log", "legacy"), "out/x.legacy.log");
        assert_eq!(per_design("x", "lockless"), "x.lockless");
    }
}
