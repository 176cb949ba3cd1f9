//! A BPF array map keyed by a small id as a [`MapTable`]: the backend and reverse-NAT
//! maps, whose keys are ids the proxy allocates in `1..max_entries`.
//!
//! An array has every slot at all times, so "absent" is a slot of zero bytes (the
//! convention of `waggle_ebpf_common::maps`): removing writes zeroes, and reads skip
//! zeroed slots, so the table looks like the hash map it replaced. Writing a slot is a
//! copy in the kernel (no bucket lock, no element allocation), and the programs'
//! lookups are inlined by the verifier. The arrays are mappable (`BPF_F_MMAPABLE`):
//! reading every slot scans a shared mapping instead of copying each one out with a
//! syscall (a full read of 65,536 slots took tens of milliseconds that way), and
//! values of 4 or 8 bytes (slots, IPv4 backends and reverse-NAT entries) are written
//! through it with one atomic store each, so a program never sees half of one and a
//! full sync writes 100,000 of them without a syscall.

use std::{
    mem::size_of,
    os::fd::{AsFd, OwnedFd},
};

use aya::{
    Pod,
    maps::{Array, MapData, MapError},
};

use crate::{
    batch::{self, BatchError},
    lb_maps::{LbMapError, MapTable, typed_with_fd},
};

/// Whether `value` is all zero bytes (an empty slot).
fn is_zeroed<V: Pod>(value: &V) -> bool {
    // SAFETY: `V` is plain data of `size_of::<V>()` initialised bytes (`Pod`).
    let bytes =
        unsafe { std::slice::from_raw_parts((value as *const V).cast::<u8>(), size_of::<V>()) };
    bytes.iter().all(|b| *b == 0)
}

/// The empty slot value.
fn zeroed<V: Pod>() -> V {
    // SAFETY: `Pod` types are valid for any bytes, zeroes included.
    unsafe { std::mem::zeroed() }
}

/// A shared mapping of a `BPF_F_MMAPABLE` array: slot `i` is at `i * stride` (the
/// kernel rounds value sizes up to 8 bytes).
struct Mapped {
    base: std::ptr::NonNull<libc::c_void>,
    len: usize,
    stride: usize,
    slots: u32,
    /// Mapped writable too (not for a frozen map).
    writable: bool,
}

// SAFETY: the kernel keeps the mapping valid until `munmap`; this process writes it
// only through `&mut` of the owning table, with atomic stores (the BPF programs read
// it concurrently, as with any map update).
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `slots` slots of `V` of the array `fd`, writable where the kernel allows
    /// it; `None` where it refuses (an array created without `BPF_F_MMAPABLE`).
    fn new<V>(fd: std::os::fd::BorrowedFd<'_>, slots: u32) -> Option<Self> {
        use std::os::fd::AsRawFd;
        let stride = size_of::<V>().next_multiple_of(8);
        let len = stride.checked_mul(slots as usize)?;
        if len == 0 {
            return None;
        }
        let map = |prot| {
            // SAFETY: a fresh shared mapping of the map's fd; Rust code never holds a
            // reference into it (reads and writes go through raw pointers).
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            (base != libc::MAP_FAILED).then_some(base)
        };
        let (base, writable) = if let Some(base) = map(libc::PROT_READ | libc::PROT_WRITE) {
            (base, true)
        } else if let Some(base) = map(libc::PROT_READ) {
            (base, false)
        } else {
            tracing::debug!(error = %std::io::Error::last_os_error(), "array map not mappable");
            return None;
        };
        Some(Self {
            base: std::ptr::NonNull::new(base)?,
            len,
            stride,
            slots,
            writable,
        })
    }

    /// Whether values of `V` are written through the mapping: it is writable and a
    /// value is one aligned machine word (slots are 8-byte aligned), stored atomically.
    fn writes<V>(&self) -> bool {
        self.writable && matches!(size_of::<V>(), 4 | 8)
    }

    /// Stores `value` in slot `index` (< `slots`) with one atomic store; `writes::<V>()`
    /// must hold. Release ordering: a program that sees this value also sees every
    /// earlier store (what a slot refers to is written first).
    fn store<V: Pod>(&self, index: u32, value: &V) {
        use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
        assert!(index < self.slots, "slot {index} beyond the mapping");
        // SAFETY: `index < slots`, so the slot lies inside the writable mapping, and
        // it is 8-byte aligned (page-aligned base, stride a multiple of 8); `V` is
        // plain data of exactly the width read here.
        unsafe {
            let at = self
                .base
                .as_ptr()
                .cast::<u8>()
                .add(index as usize * self.stride);
            match size_of::<V>() {
                4 => (*at.cast::<AtomicU32>())
                    .store(std::mem::transmute_copy::<V, u32>(value), Ordering::Release),
                8 => (*at.cast::<AtomicU64>())
                    .store(std::mem::transmute_copy::<V, u64>(value), Ordering::Release),
                width => unreachable!("{width}-byte values are not stored atomically"),
            }
        }
    }

    /// Every non-zeroed slot, by index.
    fn entries<V: Pod>(&self) -> Vec<(u32, V)> {
        (0..self.slots)
            .filter_map(|i| {
                // SAFETY: `i < slots`, so the slot lies inside the mapping; `V` is plain
                // data, valid for any bytes, read unaligned as a copy.
                let value = unsafe {
                    self.base
                        .as_ptr()
                        .cast::<u8>()
                        .add(i as usize * self.stride)
                        .cast::<V>()
                        .read_unaligned()
                };
                (!is_zeroed(&value)).then_some((i, value))
            })
            .collect()
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made.
        unsafe { libc::munmap(self.base.as_ptr(), self.len) };
    }
}

/// A BPF array map of `V` by `u32` index, zeroed slots meaning "no entry". Batches use
/// one syscall per [`batch::CHUNK`] elements (Linux 5.6+), falling back to one per
/// element on kernels without batch operations.
pub struct ArrayTable<V: Pod> {
    name: &'static str,
    map: Array<MapData, V>,
    /// The map's fd again, for the batch syscalls aya does not wrap.
    fd: OwnedFd,
    /// Cleared when the kernel refused a batch command.
    batch: bool,
    /// The slots, mapped read-only (`None`: read them with syscalls).
    mapped: Option<Mapped>,
}

impl<V: Pod + Sync> ArrayTable<V> {
    pub(crate) fn new(name: &'static str, data: MapData) -> Result<Self, LbMapError> {
        let (map, fd) = typed_with_fd(name, data, Array::try_from)?;
        let mapped = Mapped::new::<V>(fd.as_fd(), map.len());
        Ok(Self {
            name,
            map,
            fd,
            batch: true,
            mapped,
        })
    }

    fn error(&self, source: MapError) -> LbMapError {
        LbMapError::Map {
            name: self.name,
            source,
        }
    }

    /// Writes `keys[i] → values[i]`: one batch per chunk, or element by element where
    /// the kernel lacks batches. An index beyond the array fails (no id allocator
    /// hands one out).
    fn write(&mut self, keys: &[u32], values: &[V]) -> Result<(), LbMapError> {
        self.write_with(batch::update, keys, values)
    }

    /// [`ArrayTable::write`] with the batch writer `update` ([`batch::update`], or
    /// [`batch::update_split`] where the order does not matter).
    fn write_with(
        &mut self,
        update: fn(std::os::fd::BorrowedFd<'_>, &[u32], &[V]) -> Result<(), BatchError>,
        keys: &[u32],
        values: &[V],
    ) -> Result<(), LbMapError> {
        assert_eq!(keys.len(), values.len(), "one value per key");
        if let Some(&index) = keys.iter().find(|&&k| k >= self.map.len()) {
            return Err(self.error(MapError::OutOfBounds {
                index,
                max_entries: self.map.len(),
            }));
        }
        if keys.is_empty() {
            return Ok(());
        }
        if let Some(mapped) = self.mapped.as_ref().filter(|m| m.writes::<V>()) {
            keys.iter()
                .zip(values)
                .for_each(|(k, v)| mapped.store(*k, v));
            return Ok(());
        }
        if self.batch {
            match update(self.fd.as_fd(), keys, values) {
                Ok(()) => return Ok(()),
                Err(BatchError::Unsupported { source }) => {
                    tracing::info!(map = self.name, %source, "batched map writes unavailable; writing one element per syscall");
                    self.batch = false;
                }
                Err(source) => {
                    return Err(LbMapError::Batch {
                        name: self.name,
                        source,
                    });
                }
            }
        }
        keys.iter()
            .zip(values)
            .try_for_each(|(k, v)| self.map.set(*k, v, 0))
            .map_err(|source| self.error(source))
    }

    /// Every slot's value, by index.
    fn slots(&self) -> Result<Vec<(u32, V)>, LbMapError> {
        if self.batch {
            match batch::lookup_all(self.fd.as_fd()) {
                Ok(slots) => return Ok(slots),
                Err(error) => tracing::debug!(map = self.name, %error, "batched read failed"),
            }
        }
        (0..self.map.len())
            .map(|i| Ok((i, self.map.get(&i, 0).map_err(|e| self.error(e))?)))
            .collect()
    }
}

impl<V: Pod + Sync> MapTable<u32, V> for ArrayTable<V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn get(&self, key: &u32) -> Result<Option<V>, LbMapError> {
        if *key >= self.map.len() {
            return Ok(None);
        }
        let value = self.map.get(key, 0).map_err(|e| self.error(e))?;
        Ok((!is_zeroed(&value)).then_some(value))
    }

    fn insert(&mut self, key: &u32, value: &V) -> Result<(), LbMapError> {
        self.write(std::slice::from_ref(key), std::slice::from_ref(value))
    }

    fn remove(&mut self, key: &u32) -> Result<(), LbMapError> {
        self.remove_batch(std::slice::from_ref(key))
    }

    fn entries(&self) -> Result<Vec<(u32, V)>, LbMapError> {
        if let Some(mapped) = &self.mapped {
            return Ok(mapped.entries());
        }
        let mut slots = self.slots()?;
        slots.retain(|(_, v)| !is_zeroed(v));
        Ok(slots)
    }

    fn insert_batch(&mut self, keys: &[u32], values: &[V]) -> Result<(), LbMapError> {
        self.write(keys, values)
    }

    fn insert_batch_unordered(&mut self, keys: &[u32], values: &[V]) -> Result<(), LbMapError> {
        self.write_with(batch::update_split, keys, values)
    }

    fn remove_batch(&mut self, keys: &[u32]) -> Result<(), LbMapError> {
        // Indexes beyond the array hold nothing: removing them succeeds.
        let len = self.map.len();
        let keys: Vec<u32> = keys.iter().copied().filter(|k| *k < len).collect();
        let zeroes = vec![zeroed::<V>(); keys.len()];
        self.write(&keys, &zeroes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_all_zero_values_are_empty_slots() {
        use waggle_ebpf_common::lb::BackendV4;
        assert!(is_zeroed(&zeroed::<BackendV4>()));
        let backend = BackendV4 {
            protocol: 6,
            ..BackendV4::default()
        };
        assert!(!is_zeroed(&backend));
        assert!(!is_zeroed(&BackendV4 {
            port: 1,
            ..BackendV4::default()
        }));
    }
}
