//! Named drop reasons. Every drop or refusal in the kernel programs increments the
//! per-CPU counter at its reason's index in the `DROPS` array map, so "why was this
//! packet dropped" always has an answer; userspace exports them as metrics.

/// A drop reason code: the index into the drops map.
pub type DropReason = u32;

pub const DROP_NO_BACKEND: DropReason = 1;
pub const DROP_EXT_LOCAL_NO_LOCAL_BACKEND: DropReason = 2;
pub const DROP_BACKEND_NOT_FOUND: DropReason = 3;
pub const DROP_CT_CREATE_FAILED: DropReason = 4;
pub const DROP_INVALID_PACKET: DropReason = 5;
pub const DROP_UNSUPPORTED_PROTOCOL: DropReason = 6;
pub const DROP_NAT_REWRITE_FAILED: DropReason = 7;
pub const DROP_FIB_LOOKUP_FAILED: DropReason = 8;
pub const DROP_MAGLEV_EMPTY: DropReason = 9;
pub const DROP_SOCK_REV_NAT_FULL: DropReason = 10;
pub const DROP_INT_LOCAL_NO_LOCAL_BACKEND: DropReason = 11;

/// One past the highest reason: the size of the drops map.
pub const DROP_REASON_COUNT: u32 = 16;

/// The metric label of a reason, as userspace prints it.
pub const fn drop_reason_name(reason: DropReason) -> &'static str {
    match reason {
        DROP_NO_BACKEND => "no_backend",
        DROP_EXT_LOCAL_NO_LOCAL_BACKEND => "external_local_no_local_backend",
        DROP_BACKEND_NOT_FOUND => "backend_not_found",
        DROP_CT_CREATE_FAILED => "conntrack_create_failed",
        DROP_INVALID_PACKET => "invalid_packet",
        DROP_UNSUPPORTED_PROTOCOL => "unsupported_protocol",
        DROP_NAT_REWRITE_FAILED => "nat_rewrite_failed",
        DROP_FIB_LOOKUP_FAILED => "fib_lookup_failed",
        DROP_MAGLEV_EMPTY => "maglev_table_empty",
        DROP_SOCK_REV_NAT_FULL => "socket_rev_nat_full",
        DROP_INT_LOCAL_NO_LOCAL_BACKEND => "internal_local_no_local_backend",
        _ => "unknown",
    }
}
