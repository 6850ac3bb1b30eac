//! One switch for every hook of a ruleset (see [`crate::compile::switch`]):
//! a load puts each hook's new rules in the next generation's slot of
//! its switch, attaching a switch to the hooks that had none, then
//! writes the generation once. Until [`Flip::commit`], dropping the
//! [`Flip`] undoes it: the generation written back, the slots it filled
//! emptied (the new hooks' links, dropped with their staging, detach).

use bpf_builder::attach::Link;
use bpf_builder::attach::tcx;
use bpf_builder::handle::{Map, Program, UpdateFlags};
use bpf_builder::load::Loaded;
use bpf_builder::map::ExistingMap;

use super::DeployError;
use super::state::{Scanned, read_generation};
use super::{pins::attach_link, target_name};
use crate::compile::Attach;
use crate::compile::switch::{SLOTS, Switch, build_switch};

/// A switch attached to a hook that had none, to be pinned in its link
/// unit.
pub(super) struct NewSwitch {
    /// Its link.
    pub link: Link,
    /// The switch program and its maps, loaded.
    pub loaded: Loaded,
    /// Where they are in `loaded`.
    pub ids: Switch,
}

impl NewSwitch {
    /// The switch program.
    pub fn prog(&self) -> &Program {
        self.loaded.program(self.ids.prog)
    }

    /// The hook's slots.
    pub fn slots(&self) -> &Map {
        self.loaded.map(self.ids.slots)
    }

    /// The ruleset's generation map.
    pub fn generation(&self) -> &Map {
        self.loaded.map(self.ids.generation)
    }
}

/// A ruleset's move to its next generation.
pub(super) struct Flip {
    /// The generation map (none until the first switch is made).
    generation: Option<Map>,
    /// The generation that runs.
    running: u32,
    /// The slots filled with the next generation's rules.
    filled: Vec<Map>,
    /// Whether the generation was written.
    flipped: bool,
    committed: bool,
}

impl Flip {
    /// The flip of the ruleset whose running programs `scan` found. Every
    /// link unit pins the same generation map; a link without a switch
    /// (pinned by an nft2bpf that had none) cannot be moved with the
    /// others, and is refused.
    pub fn new(scan: &Scanned) -> Result<Flip, DeployError> {
        let mut generation: Option<Map> = None;
        for c in scan.current.iter().filter(|c| c.link.is_some()) {
            let Some(switch) = &c.switch else {
                return Err(DeployError::Other(format!(
                    "{} was loaded by an nft2bpf without the generation switch: unload it, \
                     then load",
                    c.key
                )));
            };
            let id = |m: &Map| m.id().map_err(DeployError::io("reading a map's id"));
            match &generation {
                None => {
                    generation = Some(
                        switch
                            .generation
                            .try_clone()
                            .map_err(DeployError::io("opening the generation map"))?,
                    );
                }
                Some(g) if id(g)? == id(&switch.generation)? => {}
                Some(_) => {
                    return Err(DeployError::Other(format!(
                        "{} runs another generation map than the other hooks: unload, then load",
                        c.key
                    )));
                }
            }
        }
        let running = match &generation {
            Some(g) => read_generation(g)?,
            None => 0,
        };
        Ok(Flip {
            generation,
            running,
            filled: Vec::new(),
            flipped: false,
            committed: false,
        })
    }

    /// The generation the new rules take.
    fn next(&self) -> u32 {
        (self.running + 1) % SLOTS
    }

    /// Puts `rules` in the next generation's slot of `slots`.
    pub fn fill(&mut self, slots: &Map, rules: &Program, target: &str) -> Result<(), DeployError> {
        let slots = slots.try_clone().map_err(DeployError::io(format!(
            "{target}: opening the switch's slots"
        )))?;
        slots
            .set_program(self.next(), Some(rules))
            .map_err(|e| DeployError::Other(format!("{target}: filling the switch: {e}")))?;
        self.filled.push(slots);
        Ok(())
    }

    /// Attaches a switch to `attach` on `device`, the next generation's
    /// slot holding `rules`: until the flip it finds the running slot
    /// empty and lets packets through, as a hook without rules does.
    pub fn attach(
        &mut self,
        attach: Attach,
        device: &str,
        rules: &Program,
        place: &tcx::Place,
    ) -> Result<NewSwitch, DeployError> {
        let target = target_name(attach, device);
        let existing = match &self.generation {
            Some(g) => Some(ExistingMap::Handle(
                g.try_clone()
                    .map_err(DeployError::io("opening the generation map"))?,
            )),
            None => None,
        };
        let ids = build_switch(attach, existing).map_err(|e| DeployError::Compile {
            target: target.clone(),
            message: e.message,
        })?;
        let loaded = ids.object.load().map_err(|source| DeployError::Load {
            target: target.clone(),
            source,
        })?;
        if self.generation.is_none() {
            let g = loaded.map(ids.generation);
            self.generation = Some(
                g.try_clone()
                    .map_err(DeployError::io("opening the generation map"))?,
            );
        }
        self.fill(loaded.map(ids.slots), rules, &target)?;
        let link = attach_link(attach, device, loaded.program(ids.prog), place)?;
        Ok(NewSwitch { link, loaded, ids })
    }

    /// Writes the next generation: every hook runs the new rules from
    /// the next packet on.
    pub fn flip(&mut self) -> Result<(), DeployError> {
        let Some(g) = &self.generation else {
            return Ok(());
        };
        write_generation(g, self.next())?;
        self.flipped = true;
        Ok(())
    }

    /// The new generation stays: the old one's slots are emptied, which
    /// lets its programs go.
    pub fn commit(mut self) -> Vec<String> {
        self.committed = true;
        let mut notes = Vec::new();
        for slots in &self.filled {
            if let Err(e) = slots.delete(&self.running.to_ne_bytes()) {
                notes.push(format!("cannot empty a switch's old slot: {e}"));
            }
        }
        notes
    }
}

impl Drop for Flip {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if self.flipped
            && let Some(g) = &self.generation
        {
            let _ = write_generation(g, self.running);
        }
        let next = self.next().to_ne_bytes();
        for slots in &self.filled {
            let _ = slots.delete(&next);
        }
    }
}

/// Writes `generation` into the generation map.
fn write_generation(map: &Map, generation: u32) -> Result<(), DeployError> {
    map.update(
        &0u32.to_ne_bytes(),
        &generation.to_ne_bytes(),
        UpdateFlags::Any,
    )
    .map_err(|e| DeployError::Other(format!("switching to generation {generation}: {e}")))
}
