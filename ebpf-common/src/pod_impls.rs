//! `aya::Pod` for every map type: all are `#[repr(C)]` plain data with explicit padding.

use crate::{conntrack::*, lb::*, metrics::*};

macro_rules! pod {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: `#[repr(C)]`, only integer fields and arrays of them, padding explicit.
        unsafe impl aya::Pod for $t {}
    )* };
}

pod!(
    ServiceKeyV4, ServiceKeyV6, ServiceValue, BackendV4, BackendV6, RevNatV4, RevNatV6,
    SockRevNatKeyV4, SockRevNatKeyV6, SockRevNatV4, SockRevNatV6, SockLbRecord, AffinityKey,
    AffinityValue, MaglevTable, NodeConfig, CtKeyV4, CtKeyV6, CtEntryV4, CtEntryV6,
    ServiceCounters,
);
