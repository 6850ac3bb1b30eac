//! `nft2bpf apply FILE`: a file of commands on the running ruleset's
//! sets (`add element`, `create element`, `delete element`, `flush set`,
//! one a line or between `;`), applied as one transaction, as `nft -f`
//! applies one: every command is checked first, and a file with an error
//! changes nothing. Then each set the file touches gets a new map
//! holding what the set holds once the commands have run in order (its
//! elements read from the running map, the commands applied to them),
//! put with one update in the slot the program reads the set's map
//! from ([`SetMap::swappable_spec`]): a packet sees the whole old set
//! or the whole new one, never a set half changed (as `flush set` then
//! `add element` one by one, in place, let it see an empty set).
//!
//! Single commands ([`super::sets::run`]) change the running map in
//! place: cheaper for a few elements, but each element is seen as soon
//! as it is written.
//!
//! Elements that the packet path adds to a set (`add @set`, `update
//! @set`) between the read and the swap are carried into the new map
//! once the swap has returned (the kernel returns from it once no
//! program runs with the old map); an element the packet path refreshed
//! (its expiry, its limit's tokens) in that window keeps the state read.
//!
//! [`SetMap::swappable_spec`]: crate::compile::sets::SetMap::swappable_spec

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bpf_builder::handle::{Map, UpdateFlags};
use bpf_builder::pins::Locked;

use super::DeployError;
use super::sets::{Copy, Op, copies, encode, plan, read};
use super::state;
use super::swap;
use crate::error::{Error, Errors};
use crate::source::SourceMap;
use crate::syntax::ast::{SetCommand, SetVerb};

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The sets replaced (`TABLE SET`), in the order the file names them.
    pub sets: Vec<String>,
    /// The maps swapped (`HOOK-DEVICE/setN`).
    pub maps: Vec<String>,
}

/// One copy of a set, with what it holds once the commands have run.
struct Planned {
    copy: Copy,
    /// The elements read from the running map before the commands ran.
    read: HashSet<Vec<u8>>,
    /// The entries the new map gets.
    contents: HashMap<Vec<u8>, Vec<u8>>,
}

/// One copy of a set, with the map that replaces it.
struct Swap {
    copy: Copy,
    /// The elements read from the running map before the commands ran.
    read: HashSet<Vec<u8>>,
    new: Map,
}

/// Applies the commands of `text` (the file `file`, named so in errors)
/// to the ruleset running under `pin_root`, as described in the
/// [module docs](self). On an error nothing is changed.
pub fn apply(pin_root: &Path, file: &str, text: &str) -> Result<Applied, DeployError> {
    let mut map = SourceMap::new();
    let id = map.add(file, None, text, None);
    let fail = |e: Error, map: &SourceMap| DeployError::Ruleset(e.render(map));
    let cmds = crate::syntax::parse_set_commands(&mut map, id).map_err(|e| fail(e, &map))?;
    if let Some(list) = cmds.iter().find(|c| c.verb == SetVerb::List) {
        return Err(fail(
            Error::new(
                "`list set` changes nothing: list sets with `nft2bpf list set`",
                list.span,
            ),
            &map,
        ));
    }
    super::sets::with_running(pin_root, |scan, progs, now| {
        let (sets, planned) = plan_all(&cmds, &map, scan, progs, now)?;
        let swaps = swap_all(planned, now)?;
        Ok(Applied {
            sets,
            maps: swaps.iter().map(|s| s.copy.name.clone()).collect(),
        })
    })
}

/// The sets `cmds` (of the file `map` holds) touch (`TABLE SET`, in the
/// file's order), and what each running copy of them holds once the
/// commands have run: worked out for all before any map is made.
fn plan_all(
    cmds: &[SetCommand],
    map: &SourceMap,
    scan: &state::Scanned,
    progs: &Locked<'_>,
    now: u64,
) -> Result<(Vec<String>, Vec<Planned>), DeployError> {
    let mut sets: Vec<(String, Vec<&SetCommand>)> = Vec::new();
    for cmd in cmds {
        let name = format!("{} {}", cmd.table.name.name, cmd.set.name);
        match sets.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(cmd),
            None => sets.push((name, vec![cmd])),
        }
    }
    let mut planned = Vec::new();
    for (_, list) in &sets {
        let fail = |e: Error| DeployError::Ruleset(e.render(map));
        for copy in copies(scan, progs, list[0], &fail)? {
            if !swap::is_swappable(&copy.pinned) {
                return Err(DeployError::Other(format!(
                    "{}: loaded by an earlier nft2bpf, whose sets cannot be swapped; load the ruleset again",
                    copy.name
                )));
            }
            let mut contents = read(&copy, now)?;
            let read = contents.keys().cloned().collect();
            for cmd in list {
                run_on(cmd, &copy, &mut contents, now)
                    .map_err(|e| DeployError::Ruleset(e.render(map)))?;
            }
            planned.push(Planned {
                copy,
                read,
                contents,
            });
        }
    }
    Ok((sets.into_iter().map(|(n, _)| n).collect(), planned))
}

/// Makes and fills the new maps, then swaps each in: all, or (a swap
/// failing) none. A new map not swapped in is freed when dropped.
fn swap_all(planned: Vec<Planned>, now: u64) -> Result<Vec<Swap>, DeployError> {
    let mut swaps = Vec::new();
    for Planned {
        copy,
        read,
        contents,
    } in planned
    {
        let new = swap::new_contents(&copy.set, &copy.map)?;
        new.update_all(contents.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            .map_err(|e| DeployError::Other(format!("filling a new map for {}: {e}", copy.name)))?;
        swaps.push(Swap { copy, read, new });
    }
    for (n, s) in swaps.iter().enumerate() {
        if let Err(e) = swap::swap(&s.copy.name, &s.copy.pinned, &s.new) {
            // Back to the old maps, which the copies still hold open.
            for done in swaps[..n].iter().rev() {
                let _ = swap::swap(&done.copy.name, &done.copy.pinned, &done.copy.map);
            }
            return Err(e);
        }
    }
    for s in swaps.iter().filter(|s| s.copy.set.stateful) {
        carry_added(s, now)?;
    }
    Ok(swaps)
}

/// Runs `cmd` on `contents`, the entries of `copy`'s set: as
/// [`super::sets::run`] would on the map, with the same checks (a full
/// set, a conflicting interval, an element there or not).
fn run_on(
    cmd: &SetCommand,
    copy: &Copy,
    contents: &mut HashMap<Vec<u8>, Vec<u8>>,
    now: u64,
) -> Result<(), Errors> {
    let Some(elements) = &cmd.elements else {
        contents.clear();
        return Ok(());
    };
    let encoded = encode(&copy.meta, &copy.set, elements)?;
    let ops = plan(cmd, copy, contents, Some(contents.len()), &encoded, now)
        .map_err(|e| Errors(vec![e]))?;
    for op in ops {
        match op {
            Op::Insert(k, v) | Op::Refresh(k, v, _) => contents.insert(k, v),
            Op::Remove(k, _) => contents.remove(&k),
        };
    }
    Ok(())
}

/// Adds to the new map of `s` the elements the packet path added to the
/// old one after it was read: no program runs with the old map once the
/// swap has returned, so none is added after this.
fn carry_added(s: &Swap, now: u64) -> Result<(), DeployError> {
    for (k, v) in read(&s.copy, now)? {
        if s.read.contains(&k) {
            continue;
        }
        // The new set full, or the element there already: the new set's
        // contents win.
        let _ = s.new.update(&k, &v, UpdateFlags::NoExist);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<SetCommand>, String> {
        let mut map = SourceMap::new();
        let file = map.add("f.nft", None, text, None);
        crate::syntax::parse_set_commands(&mut map, file).map_err(|e| e.render(&map))
    }

    #[test]
    fn a_file_of_commands_is_split_at_lines_and_semicolons() {
        let cmds = parse(
            "# replace s\nflush set netdev t s; add element t s { 1,\n  2 }\n\n\
             delete element t u { 3 } # trailing\ncreate element t s { 4 }",
        )
        .unwrap();
        let verbs: Vec<_> = cmds.iter().map(|c| (c.verb, c.set.name.as_str())).collect();
        assert_eq!(
            verbs,
            [
                (SetVerb::Flush, "s"),
                (SetVerb::Add, "s"),
                (SetVerb::Delete, "u"),
                (SetVerb::Create, "s"),
            ]
        );
        assert!(parse("").unwrap().is_empty());
        // Two commands on a line need a `;`; an error names its line.
        let e = parse("flush set t s add element t s { 1 }").unwrap_err();
        assert!(e.contains("f.nft:1:15"), "{e}");
        let e = parse("flush set t s\nflush set t s\nadd element t s 1\n").unwrap_err();
        assert!(e.contains("f.nft:3:17"), "{e}");
    }
}
