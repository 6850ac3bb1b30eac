//! Throw-away unprivileged users, deleted on drop, and commands run as
//! them without capabilities (or with a chosen few).

use std::ffi::OsStr;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{Error, Result};

/// Prefix of every user this crate creates: `tbu-<pid>-<counter>`.
const PREFIX: &str = "tbu-";
/// Tells users of one process apart.
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// The first `User::new` of a process sweeps leftovers of killed runs.
static SWEEP: Once = Once::new();

/// A system user made for a test (`useradd --system --no-create-home
/// --user-group`, no login shell), with a group of its own and no
/// capabilities: what a local attacker or a careless colleague is.
///
/// Dropping it runs `userdel` (also during unwinding, so a failing test
/// cleans up); files it made stay, owned by its former uid, and are the
/// test's to remove.
#[derive(Debug)]
pub struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    /// Creates a fresh user. The name holds the process id, so parallel
    /// test processes never collide and leftovers of dead processes are
    /// swept by the next run.
    pub fn new() -> Result<User> {
        SWEEP.call_once(|| {
            if let Err(e) = sweep_stale_users() {
                eprintln!("testbed: cannot sweep stale users: {e}");
            }
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}", std::process::id());
        run_locked(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ],
        )?;
        // From here on, dropping `user` deletes it if a later step fails.
        let mut user = User {
            name,
            uid: 0,
            gid: 0,
        };
        user.uid = id(&["-u", &user.name])?;
        user.gid = id(&["-g", &user.name])?;
        if user.uid == 0 || user.gid == 0 {
            return Err(Error::Invalid(format!("{} got uid or gid 0", user.name)));
        }
        Ok(user)
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user's id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The id of the user's own group.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// A command that runs `program` as this user, in its own group only,
    /// without any capability (`setpriv`, which must be installed:
    /// util-linux).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        self.command_with_caps(&[], program)
    }

    /// As [`command`](User::command), with the capabilities `caps` (as
    /// `setpriv --list-caps` spells them: `bpf`, `net_admin`) and no
    /// other: inheritable, ambient and bounding set, so the program runs
    /// with them effective.
    pub fn command_with_caps(&self, caps: &[&str], program: impl AsRef<OsStr>) -> Command {
        let set: String = std::iter::once("-all".to_string())
            .chain(caps.iter().map(|c| format!("+{c}")))
            .collect::<Vec<_>>()
            .join(",");
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups")
            .arg(format!("--inh-caps={set}"))
            .arg(format!("--ambient-caps={set}"))
            .arg(format!("--bounding-set={set}"))
            .arg("--")
            .arg(program)
            // Not root's environment: a home the user may not read.
            .env("HOME", "/")
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
        cmd
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if let Err(e) = run_locked("userdel", &[&self.name]) {
            eprintln!("testbed: cannot delete user {}: {e}", self.name);
        }
    }
}

/// `id ARGS`: a number.
fn id(args: &[&str]) -> Result<u32> {
    let command = format!("id {}", args.join(" "));
    let out = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| Error::io(format!("cannot run `{command}`"), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| Error::Parse {
        command,
        detail: format!("{text:?}"),
    })
}

/// Runs `useradd` or `userdel`, trying again while another process holds
/// the lock of /etc/passwd or /etc/group (exit codes 1 and 10: "cannot
/// lock", "cannot update"), for up to ten seconds.
fn run_locked(program: &str, args: &[&str]) -> Result<()> {
    let command = format!("{program} {}", args.join(" "));
    let mut tries = 0;
    loop {
        let out = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| Error::io(format!("cannot run `{command}`"), e))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let busy = matches!(out.status.code(), Some(1 | 10)) && stderr.contains("lock");
        tries += 1;
        if !busy || tries >= 200 {
            return Err(Error::Command {
                command,
                status: out.status.to_string(),
                stderr,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deletes the `tbu-<pid>-<n>` users whose process no longer exists (left
/// by a killed test run) and returns their names.
pub fn sweep_stale_users() -> Result<Vec<String>> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| Error::io("cannot read /etc/passwd", e))?;
    let mut removed = Vec::new();
    for line in passwd.lines() {
        let name = line.split(':').next().unwrap_or("");
        let Some(pid) = owner_pid(name) else {
            continue;
        };
        if std::path::Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        if run_locked("userdel", &[name]).is_ok() {
            removed.push(name.to_string());
        }
    }
    Ok(removed)
}

/// The pid in a name `tbu-<pid>-<n>`, if it is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(PREFIX)?.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_accepts_only_our_names() {
        assert_eq!(owner_pid("tbu-1234-0"), Some(1234));
        assert_eq!(owner_pid("tbu-1234"), None);
        assert_eq!(owner_pid("tbu-x-0"), None);
        assert_eq!(owner_pid("tbu-1-2-3"), None);
        assert_eq!(owner_pid("root"), None);
    }
}
