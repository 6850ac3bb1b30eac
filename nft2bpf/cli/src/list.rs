//! `list ruleset`, `list counters`, `list set` (and `list map`).

use clap::ValueEnum;
use std::collections::BTreeMap;

use nft2bpf::deploy::{self, CounterMeta, CounterRow, QuotaMeta, QuotaRow};
use serde_json::json;

use crate::common::{PinRootArg, msg};

/// What `list` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// The loaded ruleset, as nft lists it, with the counters' values.
    Ruleset,
    /// Named counters and the counters of rules.
    Counters,
    /// A set, with its elements now: `list set [netdev] TABLE SET`.
    Set,
    /// A verdict map, as `set`.
    Map,
}

/// `list`'s options.
#[derive(clap::Args)]
pub struct Args {
    /// What to show.
    #[arg(value_enum)]
    what: What,
    /// For `set` and `map`: `[netdev] TABLE SET`.
    names: Vec<String>,
    #[command(flatten)]
    root: PinRootArg,
    /// JSON output.
    #[arg(short = 'j')]
    json: bool,
}

/// Runs `list`.
pub fn run(a: &Args) -> Result<(), String> {
    match a.what {
        What::Set | What::Map => {
            let object = if a.what == What::Set { "set" } else { "map" };
            let mut words = vec![object.to_string()];
            words.extend(a.names.iter().cloned());
            return crate::sets::run_words("list", &words, &a.root);
        }
        _ if !a.names.is_empty() => {
            return Err(format!(
                "unexpected argument `{}`: only `list set` and `list map` take names",
                a.names[0]
            ));
        }
        _ => {}
    }
    let running = deploy::running(&a.root.pin_root).map_err(msg)?;
    let rows = deploy::counters(&running).map_err(msg)?;
    let mut out = match (a.what, a.json) {
        (What::Ruleset, json) => {
            let quotas = deploy::quotas(&running).map_err(msg)?;
            let now = bpf_builder::sys::clock::monotonic_ns()
                .map_err(|e| format!("reading the clock: {e}"))?;
            let sets = deploy::set_elements(&running, now).map_err(msg)?;
            let tables = deploy::listing(&running);
            if json {
                ruleset_json(&tables, &rows, &quotas, &sets).to_string()
            } else {
                deploy::ruleset_text(&tables, &rows, &quotas, &sets)
            }
        }
        (What::Counters, false) => counters_text(&rows),
        (What::Counters, true) => {
            json!({"counters": rows.iter().map(counter_json).collect::<Vec<_>>()}).to_string()
        }
        // Listed above.
        (What::Set | What::Map, _) => String::new(),
    };
    if a.json {
        out.push('\n');
    }
    crate::common::out(crate::common::escape_text(&out).as_bytes())
}

fn counters_text(rows: &[CounterRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let what = match &r.what {
            CounterMeta::Named { table, name } => format!("counter {table}/{name}"),
            CounterMeta::Rule { pos, nth, text, .. } => {
                let nth = if *nth > 0 {
                    format!(" counter {nth}")
                } else {
                    String::new()
                };
                format!("{}/{} rule {}{nth}: {text}", pos.table, pos.chain, pos.rule)
            }
        };
        out.push_str(&format!(
            "{what}: packets {} bytes {}\n",
            r.packets, r.bytes
        ));
    }
    out
}

fn counter_json(r: &CounterRow) -> serde_json::Value {
    match &r.what {
        CounterMeta::Named { table, name } => json!({
            "table": table, "name": name, "packets": r.packets, "bytes": r.bytes,
        }),
        CounterMeta::Rule { pos, nth, text, .. } => json!({
            "table": pos.table, "chain": pos.chain, "rule": pos.rule, "nth": nth,
            "text": text, "packets": r.packets, "bytes": r.bytes,
        }),
    }
}

fn ruleset_json(
    tables: &[deploy::TableMeta],
    rows: &[CounterRow],
    quotas: &[QuotaRow],
    sets: &BTreeMap<(String, String), Vec<String>>,
) -> serde_json::Value {
    let tables: Vec<_> = tables
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "sets": t.sets.iter().map(|d| json!({
                    "name": d.head.name,
                    "map": d.head.is_map,
                    "type": d.head.types.iter().map(|(ty, _)| ty.as_str()).collect::<Vec<_>>(),
                    "elements": sets.get(&(t.name.clone(), d.head.name.clone()))
                        .or(d.elements.as_ref()).cloned().unwrap_or_default(),
                })).collect::<Vec<_>>(),
                "chains": t.chains.iter().map(|c| json!({
                    "name": c.name,
                    "hook": c.hook,
                    "rules": c.rules.iter().enumerate().map(|(i, r)| {
                        let counters: Vec<_> = rows.iter().filter_map(|row| match &row.what {
                            CounterMeta::Rule { pos, .. }
                                if pos.table == t.name && pos.chain == c.name && pos.rule == i =>
                                Some(json!({"packets": row.packets, "bytes": row.bytes})),
                            _ => None,
                        }).collect();
                        json!({"text": r.text(), "counters": counters})
                    }).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "tables": tables,
        "counters": rows.iter().filter(|r| matches!(r.what, CounterMeta::Named { .. }))
            .map(counter_json).collect::<Vec<_>>(),
        "quotas": quotas.iter().map(|q| match &q.what {
            QuotaMeta::Named { table, name } => json!({
                "table": table, "name": name, "used": q.used,
            }),
            QuotaMeta::Rule { pos, nth } => json!({
                "table": pos.table, "chain": pos.chain, "rule": pos.rule, "nth": nth,
                "used": q.used,
            }),
        }).collect::<Vec<_>>(),
    })
}
