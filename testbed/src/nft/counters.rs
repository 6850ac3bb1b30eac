//! Counter and quota values read back from `nft -j list ruleset`.

use serde_json::Value;

use super::single;

/// The values of one anonymous `counter` statement of a rule.
///
/// A rule is identified by its table, chain and position: the rules of a
/// chain as `nft list` shows them, counted from 0, whether or not they
/// have a counter. A rule with two `counter` statements gives two entries
/// with the same position, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCounter {
    /// The table's name.
    pub table: String,
    /// The chain's name.
    pub chain: String,
    /// The rule's position in its chain, from 0.
    pub position: usize,
    /// The rule's handle, as nft numbers it (differs between loads).
    pub handle: u64,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted: the sum of `skb->len` (see [`crate::nft`] for what
    /// that is at netdev ingress).
    pub bytes: u64,
}

/// The values of a named counter (`counter NAME { ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCounter {
    /// The table's name.
    pub table: String,
    /// The counter's name.
    pub name: String,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// The state of a named quota (`quota NAME { [over|until] N unit used M unit }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedQuota {
    /// The table's name.
    pub table: String,
    /// The quota's name.
    pub name: String,
    /// Its limit in bytes.
    pub limit: u64,
    /// Bytes consumed so far, as nft lists them: the kernel caps the
    /// value it reports at the limit.
    pub used: u64,
    /// Whether it is an `over` quota (it matches once the limit is
    /// reached) rather than an `until` one (it matches until then).
    pub over: bool,
}

/// Every counter and named quota of a ruleset, except the harness's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Anonymous counters of rules, in the order nft lists them.
    pub rules: Vec<RuleCounter>,
    /// Named counters.
    pub named: Vec<NamedCounter>,
    /// Named quotas.
    pub quotas: Vec<NamedQuota>,
}

impl Counters {
    /// The (first) counter of the rule at `position` of chain `chain` (in
    /// any table): `(packets, bytes)`.
    pub fn rule(&self, chain: &str, position: usize) -> Option<(u64, u64)> {
        self.rules
            .iter()
            .find(|c| c.chain == chain && c.position == position)
            .map(|c| (c.packets, c.bytes))
    }

    /// The named counter `name` (in any table): `(packets, bytes)`.
    pub fn named(&self, name: &str) -> Option<(u64, u64)> {
        self.named
            .iter()
            .find(|c| c.name == name)
            .map(|c| (c.packets, c.bytes))
    }

    /// The named quota `name` (in any table).
    pub fn quota(&self, name: &str) -> Option<&NamedQuota> {
        self.quotas.iter().find(|q| q.name == name)
    }

    /// Reads the output of `nft -j list ruleset`, leaving out the table
    /// `skip_table` (the harness's own).
    pub(crate) fn from_json(text: &str, skip_table: &str) -> Result<Counters, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let items = doc
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or("no `nftables` array")?;
        let mut counters = Counters::default();
        // Rules seen so far per (table, chain), for positions.
        let mut seen: Vec<((String, String), usize)> = Vec::new();
        for item in items {
            let Some((kind, body)) = single(item) else {
                continue;
            };
            let table = body.get("table").and_then(Value::as_str).unwrap_or("");
            if table == skip_table {
                continue;
            }
            let field = |name: &str| {
                body.get(name)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("a {kind} without `{name}`: {body:?}"))
            };
            let name = || {
                body.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("a {kind} without a name: {body:?}"))
            };
            match kind {
                "rule" => {
                    let chain = body
                        .get("chain")
                        .and_then(Value::as_str)
                        .ok_or("a rule without a chain")?;
                    let key = (table.to_string(), chain.to_string());
                    let position = match seen.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, n)) => {
                            *n += 1;
                            *n - 1
                        }
                        None => {
                            seen.push((key, 1));
                            0
                        }
                    };
                    let handle = field("handle")?;
                    let exprs = body
                        .get("expr")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice);
                    for expr in exprs {
                        // `{"counter": "NAME"}` refers to a named counter,
                        // listed with its values on its own.
                        if let Some(("counter", c @ Value::Object(_))) = single(expr) {
                            let value = |f: &str| {
                                c.get(f)
                                    .and_then(Value::as_u64)
                                    .ok_or_else(|| format!("a counter without `{f}`: {c:?}"))
                            };
                            counters.rules.push(RuleCounter {
                                table: table.to_string(),
                                chain: chain.to_string(),
                                position,
                                handle,
                                packets: value("packets")?,
                                bytes: value("bytes")?,
                            });
                        }
                    }
                }
                "counter" => counters.named.push(NamedCounter {
                    table: table.to_string(),
                    name: name()?,
                    packets: field("packets")?,
                    bytes: field("bytes")?,
                }),
                "quota" => counters.quotas.push(NamedQuota {
                    table: table.to_string(),
                    name: name()?,
                    limit: field("bytes")?,
                    used: body.get("used").and_then(Value::as_u64).unwrap_or(0),
                    over: matches!(body.get("inv"), Some(Value::Bool(true))),
                }),
                _ => {}
            }
        }
        Ok(counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as nft 1.0.6 prints `nft -j list ruleset` (abridged).
    const LISTING: &str = r#"{"nftables": [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"table": {"family": "netdev", "name": "filter", "handle": 3}},
        {"counter": {"family": "netdev", "name": "web_hits", "table": "filter", "handle": 5, "packets": 7, "bytes": 700}},
        {"quota": {"family": "netdev", "name": "monthly", "table": "filter", "handle": 6, "bytes": 524288000, "used": 10485760, "inv": true}},
        {"chain": {"family": "netdev", "table": "filter", "name": "web", "handle": 1}},
        {"chain": {"family": "netdev", "table": "filter", "name": "ingress", "handle": 3, "type": "filter", "hook": "ingress", "prio": -100, "policy": "accept"}},
        {"rule": {"family": "netdev", "table": "filter", "chain": "web", "handle": 12, "expr": [{"counter": "web_hits"}, {"accept": null}]}},
        {"rule": {"family": "netdev", "table": "filter", "chain": "ingress", "handle": 22, "expr": [{"drop": null}]}},
        {"rule": {"family": "netdev", "table": "filter", "chain": "ingress", "handle": 23, "expr": [{"counter": {"packets": 3, "bytes": 120}}, {"counter": {"packets": 3, "bytes": 120}}]}},
        {"rule": {"family": "netdev", "table": "filter", "chain": "web", "handle": 13, "expr": [{"counter": {"packets": 1, "bytes": 46}}]}},
        {"table": {"family": "netdev", "name": "oracle", "handle": 4}},
        {"rule": {"family": "netdev", "table": "oracle", "chain": "observe", "handle": 2, "expr": [{"counter": {"packets": 9, "bytes": 9}}]}}
    ]}"#;

    #[test]
    fn rules_are_numbered_per_chain_and_named_objects_read() {
        let c = Counters::from_json(LISTING, "oracle").unwrap();
        let at = |chain: &str, position, handle, packets, bytes| RuleCounter {
            table: "filter".into(),
            chain: chain.into(),
            position,
            handle,
            packets,
            bytes,
        };
        assert_eq!(
            c.rules,
            vec![
                at("ingress", 1, 23, 3, 120),
                at("ingress", 1, 23, 3, 120),
                at("web", 1, 13, 1, 46),
            ]
        );
        assert_eq!(c.rule("web", 1), Some((1, 46)));
        assert_eq!(c.rule("web", 0), None);
        assert_eq!(c.named("web_hits"), Some((7, 700)));
        let q = c.quota("monthly").unwrap();
        assert_eq!((q.limit, q.used, q.over), (524288000, 10485760, true));
    }

    #[test]
    fn malformed_listings_are_errors() {
        assert!(Counters::from_json("{}", "x").is_err());
        assert!(
            Counters::from_json(
                r#"{"nftables": [{"rule": {"table": "t", "chain": "c", "handle": 1, "expr": [{"counter": {"packets": 1}}]}}]}"#,
                "x"
            )
            .is_err()
        );
    }
}
