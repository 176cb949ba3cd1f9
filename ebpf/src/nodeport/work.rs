//! Per-CPU working memory of the per-packet path.
//!
//! An IPv6 flow, conntrack key and entry, backend and FIB parameters are too large
//! for the 512-byte BPF stack next to the lookups, so one packet's state lives in a
//! per-CPU scratch value ([`Work`]); a tc program runs to the end on its CPU without
//! another tc program interleaving, so one slot per CPU suffices. IPv4 uses the same
//! shape (maps `wg_np4_work`, `wg_np6_work`), so both families share one code path.

use aya_ebpf::{bindings::bpf_fib_lookup, macros::map, maps::PerCpuArray};
use waggle_ebpf_common::{
    conntrack::{CtEntry, CtKey},
    lb::Backend,
};

use crate::{
    family::{Family, V4, V6},
    packet::Flow,
};

/// One packet's working state.
#[repr(C)]
pub struct Work<A> {
    /// FIB lookup parameters (first: [`crate::nat::forward`] zeroes them by 8-byte words).
    pub fib: bpf_fib_lookup,
    /// The parsed packet, kept in step with every rewrite.
    pub flow: Flow<A>,
    /// The packet an ICMP error quotes.
    pub quoted: Flow<A>,
    /// The conntrack key being looked up or stored.
    pub key: CtKey<A>,
    /// The connection's entry (a copy).
    pub entry: CtEntry<A>,
    /// The connection's backend.
    pub backend: Backend<A>,
    /// The source address of a translated connection (node or service address).
    pub snat: A,
}

#[map(name = "wg_np4_work")]
static WORK4: PerCpuArray<Work<u32>> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "wg_np6_work")]
static WORK6: PerCpuArray<Work<[u8; 16]>> = PerCpuArray::with_max_entries(1, 0);

/// A family with a scratch slot.
pub trait Scratch: Family {
    /// This CPU's slot (index 0 of a one-entry array always exists).
    fn work() -> Option<&'static mut Work<Self::Addr>>;
}

impl Scratch for V4 {
    #[inline(always)]
    fn work() -> Option<&'static mut Work<u32>> {
        // SAFETY: this CPU's slot; nothing else uses it while this program runs.
        WORK4.get_ptr_mut(0).map(|ptr| unsafe { &mut *ptr })
    }
}

impl Scratch for V6 {
    #[inline(always)]
    fn work() -> Option<&'static mut Work<[u8; 16]>> {
        // SAFETY: as above.
        WORK6.get_ptr_mut(0).map(|ptr| unsafe { &mut *ptr })
    }
}
