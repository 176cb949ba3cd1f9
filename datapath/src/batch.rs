//! Batched BPF hash-map operations (`BPF_MAP_UPDATE_BATCH`, `BPF_MAP_DELETE_BATCH`,
//! `BPF_MAP_LOOKUP_BATCH`; Linux 5.6+), which aya 0.13 does not wrap.
//!
//! One syscall writes, deletes or reads thousands of elements, in array order, instead
//! of one syscall per element: a full sync of 100,000 entries spends most of its
//! kernel time on syscall entry otherwise. Callers fall back to per-element
//! operations when [`BatchError::Unsupported`] says the kernel (or the map type)
//! lacks the command.
//!
//! Keys and values are passed as arrays of `#[repr(C)]` ABI types whose sizes equal the
//! map's key and value sizes (aya checks those sizes when the map is opened).

use std::{
    io,
    mem::{MaybeUninit, size_of},
    os::fd::{AsRawFd, BorrowedFd},
};

use aya::Pod;

/// `enum bpf_cmd` values (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// The kernel's `ENOTSUPP` (524): a map type without batch operations.
const ENOTSUPP: i32 = 524;

/// Elements per syscall: bounds the time one call holds the CPU in the kernel.
pub const CHUNK: usize = 8192;

/// Fewest elements [`update_split`] hands to one thread: below this, starting a
/// thread costs more than the writes it takes over.
pub const SPLIT_MIN: usize = 4096;

/// Most threads [`update_split`] writes with.
const SPLIT_MAX_THREADS: usize = 4;

/// Bytes of values one lookup call reads at most (Maglev tables are 64 KiB each).
const LOOKUP_BYTES: usize = 4 << 20;

/// The `batch` member of `union bpf_attr` (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// A batch operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The kernel has no such command (before 5.6) or the map type has no batch ops.
    #[error("the kernel does not support batched map operations here (needs Linux 5.6+): {source}")]
    Unsupported {
        #[source]
        source: io::Error,
    },
    /// The element at `index` (and none after it) was not processed.
    #[error("batch stopped at element {index}: {source}")]
    Failed {
        index: usize,
        #[source]
        source: io::Error,
    },
}

fn bpf(cmd: libc::c_long, attr: &mut BatchAttr) -> Result<(), io::Error> {
    // SAFETY: `attr` is a valid, initialised `bpf_attr.batch` of the size passed; the
    // pointers in it reference live buffers of `count` keys/values of the map's sizes
    // (guaranteed by the callers), which the kernel reads or writes only during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn unsupported(error: &io::Error, processed: u32) -> bool {
    match error.raw_os_error() {
        // An unknown command is EINVAL before anything was processed.
        Some(libc::EINVAL) => processed == 0,
        Some(code) => code == ENOTSUPP || code == libc::EOPNOTSUPP,
        None => false,
    }
}

fn attr(fd: BorrowedFd<'_>) -> BatchAttr {
    BatchAttr {
        map_fd: fd.as_raw_fd() as u32,
        ..BatchAttr::default()
    }
}

/// Writes `keys[i] → values[i]` for every `i`, in order (`BPF_ANY`).
///
/// `K` and `V` must be the map's key and value types (plain data of the map's sizes).
pub fn update<K: Pod, V: Pod>(
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> Result<(), BatchError> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    let mut done = 0;
    for (k, v) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
        let mut a = attr(fd);
        a.keys = k.as_ptr() as u64;
        a.values = v.as_ptr() as u64;
        a.count = k.len() as u32;
        if let Err(source) = bpf(BPF_MAP_UPDATE_BATCH, &mut a) {
            if done == 0 && unsupported(&source, a.count) {
                return Err(BatchError::Unsupported { source });
            }
            return Err(BatchError::Failed {
                index: done + a.count as usize,
                source,
            });
        }
        done += k.len();
    }
    Ok(())
}

/// Writes `keys[i] → values[i]` for every `i` like [`update`], but splits a large
/// batch into contiguous parts written concurrently from up to one thread per CPU
/// (at most 4, each with at least [`SPLIT_MIN`] elements): the kernel's hash maps lock
/// per bucket, so writers of one map rarely wait for each other. The order of the
/// writes is therefore not the array order; use it only for entries that do not
/// depend on one another. On error, elements outside the failed part may have been
/// written too (upserts are idempotent; the caller rewrites).
pub fn update_split<K: Pod + Sync, V: Pod + Sync>(
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> Result<(), BatchError> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    if keys.len() < 2 * SPLIT_MIN {
        return update(fd, keys, values);
    }
    // Asked once: std reads the cgroup's CPU quota files to answer.
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let parts = cpus
        .min(SPLIT_MAX_THREADS)
        .min(keys.len() / SPLIT_MIN)
        .max(1);
    if parts == 1 {
        return update(fd, keys, values);
    }
    let size = keys.len().div_ceil(parts);
    std::thread::scope(|scope| {
        let mut parts = keys.chunks(size).zip(values.chunks(size)).enumerate();
        // The first part is written on this thread, the others on their own.
        let (_, (first_keys, first_values)) = parts.next().expect("at least two parts");
        let others: Vec<_> = parts
            .map(|(i, (k, v))| (i * size, scope.spawn(move || update(fd, k, v))))
            .collect();
        let mut result = update(fd, first_keys, first_values);
        for (offset, handle) in others {
            let part = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if result.is_ok() {
                result = part.map_err(|error| match error {
                    BatchError::Failed { index, source } => BatchError::Failed {
                        index: offset + index,
                        source,
                    },
                    unsupported => unsupported,
                });
            }
        }
        result
    })
}

/// Deletes every key of `keys`, in order; keys that are absent are skipped.
pub fn delete<K: Pod>(fd: BorrowedFd<'_>, keys: &[K]) -> Result<(), BatchError> {
    let mut rest = keys;
    let mut done = 0;
    let mut first = true;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(CHUNK)];
        let mut a = attr(fd);
        a.keys = chunk.as_ptr() as u64;
        a.count = chunk.len() as u32;
        match bpf(BPF_MAP_DELETE_BATCH, &mut a) {
            Ok(()) => {
                rest = &rest[chunk.len()..];
                done += chunk.len();
            }
            // The kernel stops at an absent key: skip it and go on.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let skip = a.count as usize + 1;
                rest = &rest[skip.min(rest.len())..];
                done += skip;
            }
            Err(source) => {
                if first && unsupported(&source, a.count) {
                    return Err(BatchError::Unsupported { source });
                }
                return Err(BatchError::Failed {
                    index: done + a.count as usize,
                    source,
                });
            }
        }
        first = false;
    }
    Ok(())
}

/// Reads every entry of a hash or array map (`K`, `V`: the map's key and value types;
/// an array yields every slot).
pub fn lookup_all<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> Result<Vec<(K, V)>, BatchError> {
    let chunk = (LOOKUP_BYTES / size_of::<V>().max(1)).clamp(1, CHUNK);
    let mut out = Vec::new();
    let mut keys: Vec<MaybeUninit<K>> = Vec::with_capacity(chunk);
    let mut values: Vec<MaybeUninit<V>> = Vec::with_capacity(chunk);
    // The cursor is a bucket index (hash map) or an index (array), both u32.
    let mut cursor = 0u32;
    let mut first = true;
    loop {
        let mut a = attr(fd);
        if !first {
            a.in_batch = &raw const cursor as u64;
        }
        let mut next = 0u32;
        a.out_batch = &raw mut next as u64;
        a.keys = keys.as_mut_ptr() as u64;
        a.values = values.as_mut_ptr() as u64;
        a.count = chunk as u32;
        let result = bpf(BPF_MAP_LOOKUP_BATCH, &mut a);
        let n = (a.count as usize).min(chunk);
        let end = match result {
            Ok(()) => false,
            // ENOENT: the end of the map (with the last `count` entries).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(source) => {
                if first && unsupported(&source, 0) {
                    return Err(BatchError::Unsupported { source });
                }
                return Err(BatchError::Failed {
                    index: out.len(),
                    source,
                });
            }
        };
        // SAFETY: the kernel wrote the first `n` keys and values (`count` on return);
        // `K` and `V` are `Pod`, so any bytes are valid values.
        out.extend((0..n).map(|i| unsafe {
            (
                keys.as_ptr().add(i).cast::<K>().read(),
                values.as_ptr().add(i).cast::<V>().read(),
            )
        }));
        if end || n == 0 {
            return Ok(out);
        }
        cursor = next;
        first = false;
    }
}
