//! The logs `--log` and `--kmsg` write, read back by util-linux `dmesg -F`
//! and by a parser of the /dev/kmsg format.

use std::process::Command;

fn dmesg(args: &[&str]) -> Vec<String> {
    let out = Command::new("dmesg")
        .args(args)
        .output()
        .expect("util-linux dmesg");
    assert!(
        out.status.success(),
        "dmesg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn dmesg_reads_the_log_and_the_kmsg_file_parses_back_to_the_same_records() {
    let dir = std::env::temp_dir().join(format!("printk-sim-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, kmsg, json) = (
        dir.join("out.log"),
        dir.join("out.kmsg"),
        dir.join("out.json"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_printk-sim"))
        .args(["run", "nmi-in-vprintk-window", "--design", "legacy"])
        .arg("--log")
        .arg(&log)
        .arg("--kmsg")
        .arg(&kmsg)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let readable = report["runs"][0]["messages"]["readable"].as_u64().unwrap() as usize;
    let log_s = log.to_str().unwrap();

    // dmesg reads every record.
    let all = dmesg(&["-F", log_s]);
    assert_eq!(all.len(), readable);
    // --level filters: exactly the one crit record, the kernel's own line.
    let crit = dmesg(&["-F", log_s, "--level", "crit"]);
    assert_eq!(crit.len(), 1, "{crit:?}");
    assert!(
        crit[0].ends_with("BUG: recent printk recursion!"),
        "{crit:?}"
    );
    assert_eq!(dmesg(&["-F", log_s, "--level", "info"]).len(), readable - 1);
    // -x decodes facility and level.
    let decoded = dmesg(&["-F", log_s, "-x"]);
    assert_eq!(
        decoded
            .iter()
            .filter(|l| l.starts_with("kern  :info  : "))
            .count(),
        readable - 1
    );
    assert_eq!(
        decoded
            .iter()
            .filter(|l| l.starts_with("kern  :crit  : "))
            .count(),
        1
    );

    // The kmsg file holds the same records: level, time, caller and text.
    let syslog = std::fs::read_to_string(&log).unwrap();
    let kmsg_s = std::fs::read_to_string(&kmsg).unwrap();
    let mut last_seq = None;
    let mut n = 0;
    for (s, k) in syslog.lines().zip(kmsg_s.lines()) {
        let (head, text) = k.split_once(';').unwrap();
        let f: Vec<&str> = head.split(',').collect();
        let (prefix, seq, usec, flag) = (
            f[0],
            f[1].parse::<u64>().unwrap(),
            f[2].parse::<u64>().unwrap(),
            f[3],
        );
        let caller = f[4].strip_prefix("caller=").unwrap();
        assert_eq!(flag, "-");
        assert!(last_seq < Some(seq), "sequence numbers grow");
        last_seq = Some(seq);
        let want = format!(
            "<{prefix}>[{:5}.{:06}][{caller:>6}] {}",
            usec / 1_000_000,
            usec % 1_000_000,
            unescape(text)
        );
        assert_eq!(s, want);
        n += 1;
    }
    assert_eq!(n, readable);
    assert_eq!(kmsg_s.lines().count(), readable);
}
