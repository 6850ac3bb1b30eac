//! `log`: the records of `log` statements, as packets hit them.

use std::time::{Duration, Instant};

use bpf_builder::ringbuf::RingBuf;
use nft2bpf::compile::log::LogRecord;
use nft2bpf::deploy::{self, describe_log};
use serde_json::json;

use crate::common::{PinRootArg, msg};

/// `log`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// Stop after N records.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after S seconds (fractions allowed).
    #[arg(long, value_name = "S")]
    timeout: Option<f64>,
    #[command(flatten)]
    root: PinRootArg,
    /// JSON output, one object a line.
    #[arg(short = 'j')]
    json: bool,
}

/// Runs `log`.
pub fn run(a: &Args) -> Result<(), String> {
    let running = deploy::running(&a.root.pin_root).map_err(msg)?;
    let mut rings = Vec::new();
    for r in &running {
        let (Some(map), Some(meta)) = (&r.log, &r.meta) else {
            continue;
        };
        let ring = RingBuf::new(map).map_err(|e| e.to_string())?;
        rings.push((ring, meta));
    }
    if rings.is_empty() {
        return Err("the loaded ruleset has no log statement (or no ruleset is loaded)".into());
    }
    let deadline = match a.timeout {
        Some(s) if s.is_finite() && s >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(s)),
        Some(_) => return Err("--timeout takes a number of seconds".into()),
        None => None,
    };
    let mut seen = 0u64;
    loop {
        for (ring, meta) in rings.iter_mut() {
            while a.count.is_none_or(|n| seen < n) {
                let Some(bytes) = ring.next_record().map_err(|e| e.to_string())? else {
                    break;
                };
                let Some(rec) = LogRecord::parse(bytes) else {
                    continue;
                };
                let line = describe_log(meta, &rec);
                let text = if a.json {
                    json!({"prefix": line.prefix, "rule": line.rule, "packet": line.packet})
                        .to_string()
                } else {
                    line.to_string()
                };
                crate::common::out(format!("{text}\n").as_bytes())?;
                seen += 1;
            }
        }
        if a.count.is_some_and(|n| seen >= n) {
            return Ok(());
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(());
        }
        let nap = Duration::from_millis(50).min(left.unwrap_or(Duration::MAX));
        if rings.len() == 1 {
            rings[0].0.wait(Some(nap)).map_err(|e| e.to_string())?;
        } else {
            std::thread::sleep(nap);
        }
    }
}
