//! Counters carried over a reload, none of their packets lost.
//!
//! A counter whose key ([`super::CounterMeta::key`]: table, chain, rule
//! text and occurrence, or a named counter's name) is in both the old and
//! the new program goes on in the new one: just before the generation
//! switch the new counter is set to the old one's value (the new program
//! runs no packet yet), and once every program that met the old
//! generation has finished ([`wait_for_running_programs`]), what the old
//! counter counted in between goes into the new program's `carried` map.
//! The program never touches that map (a per-CPU counter cannot be
//! added to from user space without losing the packets counted while it
//! is written); readers add it to the per-CPU sum ([`total`]). A member
//! of an XDP dispatcher, which the switch does not move, takes only the
//! value before: the old member runs on beside it until the load
//! commits, and both count what crosses them meanwhile.

use std::collections::HashMap;

use bpf_builder::grace::wait_for_running_programs;
use bpf_builder::handle::{Map, MapError, UpdateFlags};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object};

use super::DeployError;
use super::meta::Meta;
use crate::compile::actions::{CounterValue, read_counter, write_counter};

/// The map of counts carried into a program, by counter slot.
pub const CARRIED_MAP: &str = "nft_carried";

/// A program's `carried` map for `counters` counters (one entry at
/// least), all zero.
pub(super) fn carried_map(counters: usize) -> Result<(Loaded, MapId), DeployError> {
    let mut o = Object::new();
    let id = o
        .add_map(MapSpec::array(CARRIED_MAP, 16, counters.max(1) as u32))
        .map_err(|e| DeployError::Other(e.to_string()))?;
    let loaded = o.load().map_err(|source| DeployError::Load {
        target: format!("the {CARRIED_MAP} map"),
        source,
    })?;
    Ok((loaded, id))
}

/// Counter `slot`: the per-CPU sum in `counters`, plus what `carried`
/// holds for it (a program pinned before the `carried` map has none).
pub fn total(counters: &Map, carried: Option<&Map>, slot: u32) -> Result<CounterValue, MapError> {
    let mut v = read_counter(counters, slot)?;
    if let Some(bytes) = carried
        .map(|m| m.lookup(&slot.to_ne_bytes()))
        .transpose()?
        .flatten()
    {
        let word =
            |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("a 16-byte value"));
        v.packets += word(0);
        v.bytes += word(8);
    }
    Ok(v)
}

/// The counters of one running program, as a reload reads them.
pub(super) struct OldCounters<'a> {
    /// Its description.
    pub meta: &'a Meta,
    /// Its per-CPU counters.
    pub counters: &'a Map,
    /// Its carried counts.
    pub carried: Option<&'a Map>,
}

/// One counter carried: its slots and the old value set before the
/// switch.
struct Carried {
    old: u32,
    new: u32,
    before: CounterValue,
}

/// The counters a reload carries from one old program into its new one.
pub(super) struct Carry<'a> {
    old: OldCounters<'a>,
    carried: Vec<Carried>,
}

impl<'a> Carry<'a> {
    /// Sets the new program's counters (`new_counters`, by `new_meta`'s
    /// slots) to the old one's, before the switch: the new program must
    /// not run yet.
    pub fn before_switch(
        old: OldCounters<'a>,
        new_meta: &Meta,
        new_counters: &Map,
    ) -> Result<Carry<'a>, MapError> {
        let by_key: HashMap<String, usize> = old
            .meta
            .counters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.key(), i))
            .collect();
        let mut carried = Vec::new();
        for (slot, c) in new_meta.counters.iter().enumerate() {
            let Some(&o) = by_key.get(&c.key()) else {
                continue;
            };
            let before = total(old.counters, old.carried, o as u32)?;
            write_counter(new_counters, slot as u32, before)?;
            carried.push(Carried {
                old: o as u32,
                new: slot as u32,
                before,
            });
        }
        Ok(Carry { old, carried })
    }

    /// How many counters it carries.
    pub fn len(&self) -> usize {
        self.carried.len()
    }

    /// After the switch and [`wait_for_switch`]: what the old counters
    /// counted since [`Carry::before_switch`] goes into the new program's
    /// `carried` map.
    pub fn after_switch(&self, new_carried: &Map) -> Result<(), MapError> {
        for c in &self.carried {
            let now = total(self.old.counters, self.old.carried, c.old)?;
            let packets = now.packets.saturating_sub(c.before.packets);
            let bytes = now.bytes.saturating_sub(c.before.bytes);
            if packets == 0 && bytes == 0 {
                continue;
            }
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&packets.to_ne_bytes());
            value[8..].copy_from_slice(&bytes.to_ne_bytes());
            new_carried.update(&c.new.to_ne_bytes(), &value, UpdateFlags::Any)?;
        }
        Ok(())
    }
}

/// Waits until no program that met the old generation still runs, so
/// that the old counters hold their last values.
pub(super) fn wait_for_switch() -> Result<(), DeployError> {
    wait_for_running_programs().map_err(|e| {
        DeployError::Other(format!(
            "waiting for the old rules' last packets before carrying their counters: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::meta::CounterMeta;

    fn named(name: &str) -> CounterMeta {
        CounterMeta::Named {
            table: "t".into(),
            name: name.into(),
        }
    }

    fn value(packets: u64, bytes: u64) -> CounterValue {
        CounterValue { packets, bytes }
    }

    /// Counters of the old program's keys go on in the new one's slots:
    /// set before the switch, and what the old counted after that is
    /// added through `carried`, the old `carried` counts included.
    #[test]
    fn counts_before_and_after_the_switch_add_up_in_the_new_slots() {
        if !testbed::bpf_privileged("carrying counters") {
            return;
        }
        let mut o = Object::new();
        let per_cpu =
            |o: &mut Object, name: &str, n| o.add_map(MapSpec::per_cpu_array(name, 16, n)).unwrap();
        let old_counters = per_cpu(&mut o, "old", 2);
        let new_counters = per_cpu(&mut o, "new", 3);
        let old_carried = o.add_map(MapSpec::array("old_carried", 16, 2)).unwrap();
        let loaded = o.load().unwrap();
        let (new_carried_obj, new_carried) = carried_map(3).unwrap();
        let new_carried = new_carried_obj.map(new_carried);
        let (old_map, new_map) = (loaded.map(old_counters), loaded.map(new_counters));

        // Old: a = 5/500; b = 7/700 counted, 1/100 carried into it before.
        write_counter(old_map, 0, value(5, 500)).unwrap();
        write_counter(old_map, 1, value(7, 700)).unwrap();
        let mut b_carried = [0u8; 16];
        b_carried[..8].copy_from_slice(&1u64.to_ne_bytes());
        b_carried[8..].copy_from_slice(&100u64.to_ne_bytes());
        loaded
            .map(old_carried)
            .update(&1u32.to_ne_bytes(), &b_carried, UpdateFlags::Any)
            .unwrap();
        let old_meta = Meta {
            counters: vec![named("a"), named("b")],
            ..Meta::default()
        };
        let new_meta = Meta {
            counters: vec![named("b"), named("c"), named("a")],
            ..Meta::default()
        };
        let old = OldCounters {
            meta: &old_meta,
            counters: old_map,
            carried: Some(loaded.map(old_carried)),
        };
        let carry = Carry::before_switch(old, &new_meta, new_map).unwrap();
        assert_eq!(carry.len(), 2);
        assert_eq!(read_counter(new_map, 0).unwrap(), value(8, 800));
        assert_eq!(read_counter(new_map, 2).unwrap(), value(5, 500));

        // The old program counts 4 more packets of `a` before it stops.
        write_counter(old_map, 0, value(9, 900)).unwrap();
        carry.after_switch(new_carried).unwrap();
        let total = |slot| total(new_map, Some(new_carried), slot).unwrap();
        assert_eq!(total(0), value(8, 800), "b: nothing counted after");
        assert_eq!(total(1), value(0, 0), "c: new");
        assert_eq!(total(2), value(9, 900), "a: the 4 packets after");
        assert_eq!(
            new_carried.lookup(&0u32.to_ne_bytes()).unwrap(),
            Some(vec![0; 16]),
            "nothing carried for b"
        );
    }
}
