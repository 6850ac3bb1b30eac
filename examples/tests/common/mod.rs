//! Running a tracing tool as a subprocess: its stdout line by line, Ctrl-C,
//! and what `bpftool` shows of it while it runs and after it exits.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Held by the tests of one binary that count this process's calls: the
/// other tests' threads would add theirs.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tool running with its stdout read by a thread.
pub struct Tool {
    pub child: Child,
    lines: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Tool {
    pub fn spawn(exe: &str, args: &[&str]) -> Tool {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tool {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `pred` (true) or `timeout` passes
    /// or the output ends (false).
    pub fn wait_for(&mut self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for the exit; returns
    /// the status, with the rest of the output in `seen`.
    pub fn interrupt(mut self) -> (ExitStatus, Vec<String>) {
        let kill = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = self.finish();
        (status, std::mem::take(&mut self.seen))
    }

    fn finish(&mut self) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                return s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!(
                    "the tool did not exit after SIGINT; it printed {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bpftool prog show` / `link show`, or `None` without bpftool.
pub fn bpftool(what: &str) -> Option<String> {
    let out = Command::new("bpftool").args([what, "show"]).output().ok()?;
    assert!(out.status.success(), "bpftool {what} show: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The ids of loaded programs whose names start with `prefix`, from
/// `bpftool prog show` (lines `ID: TYPE  name NAME  tag ...`).
pub fn prog_ids(prefix: &str) -> Option<Vec<u32>> {
    let text = bpftool("prog")?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (id, rest) = l.split_once(": ")?;
                let name = rest
                    .split_whitespace()
                    .skip_while(|w| *w != "name")
                    .nth(1)?;
                (name.starts_with(prefix)).then(|| id.parse().ok())?
            })
            .collect(),
    )
}

/// Checks that the programs `ids` are gone from `bpftool prog show` and
/// that no link of `bpftool link show` names them. The kernel frees a
/// closed program after an RCU grace period: this waits up to 5 seconds.
pub fn assert_gone(ids: &[u32]) {
    if bpftool("prog").is_none() {
        eprintln!("bpftool is not installed: not checked");
        return;
    }
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let progs = bpftool("prog").unwrap();
        let links = bpftool("link").unwrap();
        let left: Vec<&u32> = ids
            .iter()
            .filter(|id| {
                progs.lines().any(|l| l.starts_with(&format!("{id}: ")))
                    || links.lines().any(|l| l.contains(&format!("prog {id}")))
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "programs {left:?} (or their links) still there:\n{progs}\n{links}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`prog_ids`] of `prefix` that are not in `before`.
pub fn new_prog_ids(prefix: &str, before: &Option<Vec<u32>>) -> Option<Vec<u32>> {
    let now = prog_ids(prefix)?;
    let before = before.clone().unwrap_or_default();
    Some(now.into_iter().filter(|id| !before.contains(id)).collect())
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// A command name as the kernel keeps it (`/proc/.../comm`).
pub fn comm_of(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

/// Calls getpid(2) `n` times (glibc does not cache it).
pub fn getpid_times(n: u64) {
    for _ in 0..n {
        std::hint::black_box(std::process::id());
    }
}
