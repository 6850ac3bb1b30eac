//! Running `ip` (iproute2), `nft` and the like, reporting their failures
//! with stderr.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// Runs `ip args...`, feeding `stdin` if given; returns stdout.
pub(crate) fn ip(args: &[&str], stdin: Option<&str>) -> Result<String> {
    run("ip", args, stdin, None)
}

/// Runs `program args...` (in `dir` if given), feeding `stdin` if given;
/// returns stdout. A failure carries stderr.
pub(crate) fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    dir: Option<&std::path::Path>,
) -> Result<String> {
    let command = format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("cannot run `{command}`"), e))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Dropping `pipe` at the end of this block closes it, ending the input.
        pipe.write_all(input.as_bytes())
            .map_err(|e| Error::io(format!("cannot write to `{command}`"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("cannot wait for `{command}`"), e))?;
    if !out.status.success() {
        return Err(Error::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compiles the C program `src` into `bin` against the system libpcap
/// (`cc -O SRC -o BIN -lpcap`), for tests that ask libpcap itself;
/// whether that worked.
pub fn build_with_libpcap(src: &std::path::Path, bin: &std::path::Path) -> bool {
    Command::new("cc")
        .arg("-O")
        .arg(src)
        .arg("-o")
        .arg(bin)
        .arg("-lpcap")
        .status()
        .is_ok_and(|s| s.success())
}
