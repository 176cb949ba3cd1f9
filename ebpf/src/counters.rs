//! `tc_count`: counts packets and bytes seen on the interface it is attached to
//! (tc/TCX, either direction), per CPU. Used to observe pod veths.

use aya_ebpf::{
    bindings::TC_ACT_UNSPEC,
    macros::{classifier, map},
    maps::PerCpuArray,
    programs::TcContext,
};

/// Index 0: packets, index 1: bytes.
#[map(name = "wg_ifcount_v1")]
static IF_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

#[classifier]
pub fn tc_count(ctx: TcContext) -> i32 {
    bump(0, 1);
    bump(1, ctx.len() as u64);
    // Let the packet continue through the rest of the tc chain unchanged.
    TC_ACT_UNSPEC
}

#[inline(always)]
fn bump(index: u32, by: u64) {
    if let Some(counter) = IF_COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *counter += by };
    }
}
