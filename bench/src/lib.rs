//! Side-by-side data-path benchmarks for `cargo xtask bench datapath`.
//!
//! One run measures, in the same namespace test bed and under the same conditions,
//! a client pod reaching an nginx pod (a) directly by pod IP, (b) through a ClusterIP
//! served by Waggle's eBPF socket LB, (c) through kube-proxy's iptables-mode rules and
//! (d) through kube-proxy's nftables-mode rules, at several counts of extra services.
//! The rules of (c) and (d) are generated in kube-proxy's own layout
//! ([`kube_proxy`]); the traps listed in `shared/notes/benchmarking.md` (conntrack
//! carry-over, SYN retransmits, SNAT port policy, rules taxing direct traffic) are
//! handled in [`env`]; every path is measured in many short rounds in a balanced
//! order and compared by same-round ratios with a confidence interval ([`rounds`]),
//! with the steal time of every window ([`steal`]); and the socket-LB programs' own
//! cost per connection is read from the
//! kernel's BPF statistics ([`bpf_stats`]). Start at [`run::run`], the table is
//! [`table::table`].

pub mod bpf_stats;
pub mod env;
pub mod kube_proxy;
pub mod load;
pub mod rounds;
pub mod run;
pub mod services;
pub mod steal;
pub mod table;
pub mod waggle;
