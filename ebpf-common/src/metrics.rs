//! Per-service traffic counters (per-CPU hash keyed by `rev_nat_index` as u32).

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ServiceCounters {
    pub packets: u64,
    pub bytes: u64,
    /// New connections (socket-LB connects, UDP first sends, or new CT entries).
    pub connections: u64,
}
