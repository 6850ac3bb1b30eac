//! Typed access to a loaded map: keys and values as [`Pod`] types
//! instead of bytes. Made by [`Map::typed`], which checks the sizes once.

use std::fmt;
use std::marker::PhantomData;

use crate::handle::{Map, MapError, UpdateFlags};
use crate::pod::Pod;

/// A loaded map seen with keys of type `K` and values of type `V` (for
/// per-CPU maps, `V` is one CPU's value).
pub struct TypedMap<'m, K, V> {
    map: &'m Map,
    types: PhantomData<fn(K) -> V>,
}

impl<K, V> Clone for TypedMap<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for TypedMap<'_, K, V> {}

impl<K, V> fmt::Debug for TypedMap<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedMap")
            .field("map", &self.map.name())
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<'m, K: Pod, V: Pod> TypedMap<'m, K, V> {
    /// The view of `map`, whose sizes the caller checked.
    pub(crate) fn new(map: &'m Map) -> Self {
        TypedMap {
            map,
            types: PhantomData,
        }
    }

    /// The map, for byte-level access.
    pub fn map(&self) -> &'m Map {
        self.map
    }

    /// The value of `key` (for per-CPU maps: the first CPU's; see
    /// [`get_per_cpu`](TypedMap::get_per_cpu)), `None` when absent.
    pub fn get(&self, key: &K) -> Result<Option<V>, MapError> {
        Ok(self.map.lookup(&key.to_bytes())?.map(|v| V::read(&v)))
    }

    /// The values of `key` on every possible CPU.
    pub fn get_per_cpu(&self, key: &K) -> Result<Option<Vec<V>>, MapError> {
        Ok(self
            .map
            .lookup_per_cpu(&key.to_bytes())?
            .map(|values| values.iter().map(|v| V::read(v)).collect()))
    }

    /// Sets `key` to `value`, creating or replacing it (for per-CPU maps:
    /// on every CPU).
    pub fn insert(&self, key: K, value: V) -> Result<(), MapError> {
        self.update(key, value, UpdateFlags::Any)
    }

    /// Sets `key` to `value` as `flags` says (only create, only replace).
    pub fn update(&self, key: K, value: V, flags: UpdateFlags) -> Result<(), MapError> {
        self.map.update(&key.to_bytes(), &value.to_bytes(), flags)
    }

    /// Deletes `key`; `false` if it was absent.
    pub fn remove(&self, key: &K) -> Result<bool, MapError> {
        self.map.delete(&key.to_bytes())
    }

    /// All keys, in the kernel's order.
    pub fn keys(&self) -> impl Iterator<Item = Result<K, MapError>> + 'm {
        self.map.keys().map(|k| k.map(|k| K::read(&k)))
    }

    /// All entries (first CPU's value for per-CPU maps), in the kernel's
    /// order. An entry deleted during the walk is skipped.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), MapError>> + 'm {
        self.map
            .iter()
            .map(|e| e.map(|(k, v)| (K::read(&k), V::read(&v))))
    }

    /// Creates or replaces every entry of `entries`, in order (for per-CPU
    /// maps, each value on every CPU): one `BPF_MAP_UPDATE_BATCH` per
    /// chunk of entries where the kernel has batch updates for the map
    /// type ([`MapType::has_batch_update`](crate::map::MapType::has_batch_update)),
    /// one update per entry elsewhere. Returns how many were written. On
    /// failure, [`MapError::Entry`] names the entry that failed; those
    /// before it were written, none after.
    pub fn insert_batch(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<usize, MapError> {
        let (mut key, mut value) = (vec![0u8; K::SIZE], vec![0u8; V::SIZE]);
        let mut writer = self.map.writer();
        let entry_error = |e| self.map.entry_error("insert batch", e);
        for (k, v) in entries {
            k.write(&mut key);
            v.write(&mut value);
            writer.push(&key, &value).map_err(entry_error)?;
        }
        writer.finish().map_err(entry_error)
    }
}
