//! The generation swap: how an [`Image`] reaches the maps without a moment
//! in which a frame sees a mix of two tables.
//!
//! ```text
//!  state = generation A, enabled        frames read `tier_state` once, then look up only generation A's entries
//!    1. zero the counters of VMI slots given out by this build (no frame counts into them yet)
//!    2. write the diff (image of generation B's last install -> new image) into generation B   (nobody reads B)
//!    3. state = generation B, enabled   (one u32 write: a frame sees A or B, whole)
//!    4. synchronize              (an RCU grace period: every frame that read A has finished)
//!  state = generation B                 generation A is free to be written by the next install
//! ```
//!
//! Invariants (checked by the tests below with a writer that records every
//! call): no write touches the generation `tier_state` names; no write
//! touches the generation a flip left until the grace period after that
//! flip; the generation `tier_state` names holds exactly the image last
//! installed. A failed write leaves `tier_state` alone (frames keep the old
//! generation, or are handed off when none was ever installed) and marks
//! what the target generation may hold as unknown, so the next install
//! rewrites and removes all of it.

use super::image::{Change, Image};
use super::layout::{Key, Keying, STATE_ENABLED, STATE_GEN, TierMap};
use super::slots::Slots;
use crate::config::PortId;
use crate::tables::Tables;

/// The map calls the swap needs, implemented over the real maps by the
/// agent and over a model by the tests.
pub trait MapWriter {
    /// Why a call failed.
    type Error;
    /// Writes `value` under `key` (bytes for generation-specific keys).
    fn put(&mut self, map: TierMap, key: &[u8], value: &[u8]) -> Result<(), Self::Error>;
    /// Removes `key` (a hash or trie entry).
    fn remove(&mut self, map: TierMap, key: &[u8]) -> Result<(), Self::Error>;
    /// Writes `tier_state`.
    fn set_state(&mut self, state: u32) -> Result<(), Self::Error>;
    /// Returns once every frame that started before has finished.
    fn synchronize(&mut self) -> Result<(), Self::Error>;
    /// Zeroes the kernel counters of VMI slot `slot` on every CPU.
    fn zero_vmi_counters(&mut self, slot: u32) -> Result<(), Self::Error>;
}

/// The agent's side of the tier's tables: slots, what each generation
/// holds, which one frames use.
#[derive(Debug, Default)]
pub struct Mirror {
    slots: Slots,
    written: [Option<Image>; 2],
    active: u32,
    enabled: bool,
    /// A flip whose grace period was not confirmed: wait for one first.
    unsynced: bool,
}

/// What an install wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Installed {
    /// The generation frames use now.
    pub generation: u32,
    /// Entries written or removed.
    pub writes: usize,
}

impl Mirror {
    /// The image of `tables` with this mirror's slots (see [`Image::build`]).
    pub fn build(&mut self, tables: &Tables, ifindex: impl Fn(PortId) -> Option<u32>) -> Image {
        Image::build(tables, &mut self.slots, ifindex)
    }

    /// The slots (for the counters of a VMI).
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Whether frames use installed tables (else they are handed off).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Writes `image` into the generation frames do not use, flips to it
    /// and waits for the grace period: see the module documentation.
    pub fn install<W: MapWriter>(
        &mut self,
        image: Image,
        writer: &mut W,
    ) -> Result<Installed, W::Error> {
        if self.unsynced {
            writer.synchronize()?;
            self.unsynced = false;
        }
        let target = if self.enabled {
            1 - self.active
        } else {
            self.active
        };
        let t = target as usize;
        let mut writes = 0;
        let result = (|| {
            for slot in image.new_vmi_slots() {
                writer.zero_vmi_counters(*slot)?;
            }
            for change in image.diff(self.written[t].as_ref()) {
                writes += 1;
                match change {
                    Change::Put(map, key, value) => {
                        writer.put(map, &key.encode(map, target), value)?
                    }
                    Change::Remove(map, key) => remove(writer, map, key, target)?,
                }
            }
            writer.set_state(target | STATE_ENABLED)
        })();
        if let Err(e) = result {
            let unknown = match &self.written[t] {
                Some(old) => old.merge_unknown(&image),
                None => Image::default().merge_unknown(&image),
            };
            self.written[t] = Some(unknown);
            return Err(e);
        }
        self.written[t] = Some(image);
        self.active = target;
        self.enabled = true;
        self.unsynced = true;
        writer.synchronize()?;
        self.unsynced = false;
        Ok(Installed {
            generation: target,
            writes,
        })
    }

    /// Hands every frame off (the tables could not be installed, say).
    pub fn disable<W: MapWriter>(&mut self, writer: &mut W) -> Result<(), W::Error> {
        writer.set_state(self.active & STATE_GEN)?;
        self.enabled = false;
        self.unsynced = true;
        writer.synchronize()?;
        self.unsynced = false;
        Ok(())
    }
}

fn remove<W: MapWriter>(
    writer: &mut W,
    map: TierMap,
    key: &Key,
    generation: u32,
) -> Result<(), W::Error> {
    match map.keying() {
        // An array entry cannot go: zeroes read as "no entry".
        Keying::Array(_) => writer.put(map, &key.encode(map, generation), &vec![0; map.sizes().1]),
        _ => writer.remove(map, &key.encode(map, generation)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::NodeConfig;
    use crate::process::tests::fixture;

    /// The maps as the program sees them, and what the swap did to them.
    #[derive(Default)]
    struct Model {
        maps: BTreeMap<(TierMap, Vec<u8>), Vec<u8>>,
        state: u32,
        /// The generation left by a flip not yet followed by a grace period.
        draining: Option<u32>,
        calls: Vec<String>,
        fail_after: Option<usize>,
    }

    impl Model {
        fn gen_of(map: TierMap, key: &[u8]) -> u32 {
            match map.keying() {
                Keying::Hash => u32::from_ne_bytes(key[..4].try_into().unwrap()),
                Keying::Array(max) => u32::from_ne_bytes(key[..4].try_into().unwrap()) / max,
                Keying::Lpm => u32::from(key[4]),
            }
        }

        fn write(&mut self, map: TierMap, key: &[u8]) -> Result<(), ()> {
            let generation = Self::gen_of(map, key);
            if self.state & STATE_ENABLED != 0 {
                assert_ne!(
                    generation,
                    self.state & STATE_GEN,
                    "a write to the generation in use"
                );
            }
            assert_ne!(
                Some(generation),
                self.draining,
                "a write before the grace period"
            );
            self.calls.push(format!("{map:?}"));
            if self.fail_after.is_some_and(|n| self.calls.len() > n) {
                return Err(());
            }
            Ok(())
        }

        /// The entries of generation `generation`, without the generation.
        fn generation(&self, generation: u32) -> BTreeMap<(TierMap, Vec<u8>), Vec<u8>> {
            self.maps
                .iter()
                .filter(|((map, key), value)| {
                    Self::gen_of(*map, key) == generation && value.iter().any(|b| *b != 0)
                })
                .map(|((map, key), value)| ((*map, strip(*map, key)), value.clone()))
                .collect()
        }
    }

    fn strip(map: TierMap, key: &[u8]) -> Vec<u8> {
        match map.keying() {
            Keying::Hash => key[4..].to_vec(),
            Keying::Array(max) => (u32::from_ne_bytes(key.try_into().unwrap()) % max)
                .to_ne_bytes()
                .to_vec(),
            Keying::Lpm => [&key[..4], &key[5..]].concat(),
        }
    }

    impl MapWriter for Model {
        type Error = ();
        fn put(&mut self, map: TierMap, key: &[u8], value: &[u8]) -> Result<(), ()> {
            self.write(map, key)?;
            self.maps.insert((map, key.to_vec()), value.to_vec());
            Ok(())
        }
        fn remove(&mut self, map: TierMap, key: &[u8]) -> Result<(), ()> {
            self.write(map, key)?;
            self.maps.remove(&(map, key.to_vec()));
            Ok(())
        }
        fn set_state(&mut self, state: u32) -> Result<(), ()> {
            if state & STATE_GEN != self.state & STATE_GEN && self.state & STATE_ENABLED != 0 {
                self.draining = Some(self.state & STATE_GEN);
            }
            self.state = state;
            Ok(())
        }
        fn synchronize(&mut self) -> Result<(), ()> {
            self.draining = None;
            Ok(())
        }
        fn zero_vmi_counters(&mut self, _slot: u32) -> Result<(), ()> {
            Ok(())
        }
    }

    fn image_entries(image: &Image) -> BTreeMap<(TierMap, Vec<u8>), Vec<u8>> {
        image
            .entries()
            .filter(|(_, _, v)| v.iter().any(|b| *b != 0))
            .map(|(map, key, value)| ((map, strip(map, &key.encode(map, 0))), value.to_vec()))
            .collect()
    }

    fn ifindex(port: PortId) -> Option<u32> {
        Some(10 + u32::from(port.0))
    }

    /// A run of configurations, each a change of the one before.
    fn configs() -> Vec<NodeConfig> {
        let base = fixture();
        let mut fewer = base.clone();
        fewer.vmis.retain(|v| v.key != "ns/vmi-b");
        let mut moved = base.clone();
        moved.logical_interfaces[0].vlan = 101;
        let mut routed = base.clone();
        routed.routes.pop();
        vec![base.clone(), fewer, moved, routed, base.clone(), base]
    }

    #[test]
    fn the_generation_in_use_always_holds_one_whole_image() {
        let mut mirror = Mirror::default();
        let mut model = Model::default();
        let mut previous: Option<Tables> = None;
        for config in configs() {
            let (tables, _) = match &previous {
                Some(p) => Tables::recompile(&config, p),
                None => Tables::compile(&config),
            };
            let image = mirror.build(&tables, ifindex);
            let expected = image_entries(&image);
            let installed = mirror.install(image, &mut model).unwrap();
            assert_eq!(model.state, installed.generation | STATE_ENABLED);
            assert_eq!(model.generation(installed.generation), expected);
            previous = Some(tables);
        }
    }

    #[test]
    fn a_failed_install_keeps_the_old_generation_and_the_next_one_cleans_up() {
        let configs = configs();
        let mut mirror = Mirror::default();
        let mut model = Model::default();
        let (first, _) = Tables::compile(&configs[0]);
        let image = mirror.build(&first, ifindex);
        let old = image_entries(&image);
        mirror.install(image, &mut model).unwrap();
        let state = model.state;
        // The next install fails half way through its writes.
        let (second, _) = Tables::recompile(&configs[1], &first);
        model.fail_after = Some(model.calls.len() + 5);
        let image = mirror.build(&second, ifindex);
        assert!(mirror.install(image, &mut model).is_err());
        assert_eq!(model.state, state, "frames keep the old generation");
        assert_eq!(model.generation(state & STATE_GEN), old);
        // Then one succeeds: the half-written generation holds exactly it.
        model.fail_after = None;
        let (third, _) = Tables::recompile(&configs[2], &second);
        let image = mirror.build(&third, ifindex);
        let expected = image_entries(&image);
        let installed = mirror.install(image, &mut model).unwrap();
        assert_eq!(model.generation(installed.generation), expected);
    }
}
