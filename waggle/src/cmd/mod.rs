pub mod bpf;
pub mod controllers;
pub mod proxy;
pub mod scheduler;
pub mod server;
