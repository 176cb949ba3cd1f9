pub mod bpf;
pub mod proxy;
pub mod server;
