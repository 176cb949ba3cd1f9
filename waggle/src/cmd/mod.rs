pub mod bpf;
pub mod controllers;
pub mod kubelet;
pub mod proxy;
pub mod scheduler;
pub mod server;
