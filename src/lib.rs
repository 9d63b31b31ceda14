#![deny(unsafe_code)]
pub mod cli;
pub mod http;
pub mod netdev;
pub mod pcap;
pub mod tcp;
pub mod time;
pub mod wire;
