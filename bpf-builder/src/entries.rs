//! Writing many entries to a map: in chunks of one `BPF_MAP_UPDATE_BATCH`
//! each where the kernel has batch updates for the map type
//! ([`MapType::has_batch_update`](crate::map::MapType::has_batch_update)),
//! one `BPF_MAP_UPDATE_ELEM` per entry elsewhere. The loader writes
//! initial contents with it, typed maps their batch inserts.

use std::io;

use crate::sys::bpf::{self as sys, MapRef};

/// Bytes of keys and values gathered before one batch call: large enough
/// that the system call costs nothing beside the kernel's work per entry,
/// small enough to stay in cache.
const CHUNK_BYTES: usize = 256 * 1024;

/// The layout the writer fills in, and whether it may batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Key size in bytes.
    pub key_size: usize,
    /// Value size in bytes (one CPU's value for per-CPU maps).
    pub value_size: usize,
    /// Possible CPUs when values are per CPU, else `None`.
    pub per_cpu: Option<usize>,
    /// Whether the kernel has `BPF_MAP_UPDATE_BATCH` for the map type.
    pub batch: bool,
}

/// An entry the kernel (or the size check) refused. Entries before
/// `index` were written, in order; none after it.
#[derive(Debug)]
pub(crate) struct EntryError {
    /// Position of the entry among those pushed.
    pub index: usize,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value (the first CPU's, for per-CPU maps).
    pub value: Vec<u8>,
    /// Why it failed.
    pub source: io::Error,
}

/// Gathers entries and writes them a chunk at a time (always `BPF_ANY`:
/// batches take no other mode).
pub(crate) struct EntryWriter<M> {
    map: M,
    shape: Shape,
    /// Bytes of one value in user space (per CPU: 8-byte aligned slots).
    slot: usize,
    copies: usize,
    /// Entries per chunk.
    chunk: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
    pending: usize,
    written: usize,
}

impl<M: MapRef> EntryWriter<M> {
    /// A writer to `map`, whose layout is `shape`.
    pub(crate) fn new(map: M, shape: Shape) -> Self {
        let (slot, copies) = match shape.per_cpu {
            Some(cpus) => (shape.value_size.next_multiple_of(8), cpus),
            None => (shape.value_size, 1),
        };
        let chunk = (CHUNK_BYTES / (shape.key_size + slot * copies).max(1)).max(1);
        EntryWriter {
            map,
            shape,
            slot,
            copies,
            chunk,
            keys: Vec::new(),
            values: Vec::new(),
            pending: 0,
            written: 0,
        }
    }

    /// Adds an entry (for per-CPU maps, `value` goes to every CPU),
    /// writing the chunk when it is full.
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), EntryError> {
        let (ks, vs) = (self.shape.key_size, self.shape.value_size);
        if key.len() != ks || value.len() != vs {
            // Write what came before, so the error's index still splits
            // the written entries from the rest.
            self.flush()?;
            return Err(EntryError {
                index: self.written + self.pending,
                key: key.to_vec(),
                value: value.to_vec(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "entry of {}+{} bytes, the map's are {ks}+{vs}",
                        key.len(),
                        value.len()
                    ),
                ),
            });
        }
        self.keys.extend_from_slice(key);
        for _ in 0..self.copies {
            self.values.extend_from_slice(value);
            self.values.resize(self.values.len() + self.slot - vs, 0);
        }
        self.pending += 1;
        if self.pending == self.chunk {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is pending; returns how many entries were written in all.
    pub(crate) fn finish(mut self) -> Result<usize, EntryError> {
        self.flush()?;
        Ok(self.written)
    }

    fn flush(&mut self) -> Result<(), EntryError> {
        if self.pending == 0 {
            return Ok(());
        }
        let (ks, vs) = (self.shape.key_size, self.slot * self.copies);
        let result = if self.shape.batch {
            match sys::map_update_batch(&self.map, &self.keys, &self.values, 0) {
                Ok(_) => Ok(()),
                // A kernel older than the list of
                // `MapType::has_batch_update`: one at a time from now on.
                Err(e) if e.done == 0 && is_unsupported(&e.error) => {
                    self.shape.batch = false;
                    return self.flush();
                }
                Err(e) => Err((e.done as usize, e.error)),
            }
        } else {
            (0..self.pending).try_for_each(|i| {
                let key = &self.keys[i * ks..(i + 1) * ks];
                let value = &self.values[i * vs..(i + 1) * vs];
                sys::map_update_elem(&self.map, key, value, 0).map_err(|e| (i, e))
            })
        };
        match result {
            Ok(()) => {
                self.written += self.pending;
                self.pending = 0;
                self.keys.clear();
                self.values.clear();
                Ok(())
            }
            Err((i, source)) => {
                let i = i.min(self.pending - 1);
                Err(EntryError {
                    index: self.written + i,
                    key: self.keys[i * ks..(i + 1) * ks].to_vec(),
                    value: self.values[i * vs..i * vs + self.shape.value_size].to_vec(),
                    source,
                })
            }
        }
    }
}

/// Whether the kernel refused an operation as not supported.
fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(sys::ENOTSUPP | libc::EOPNOTSUPP))
}
