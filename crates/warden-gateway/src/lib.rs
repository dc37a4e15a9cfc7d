//! The Warden gateway: one MCP endpoint in front of many MCP servers.
//!
//! A request meets, in order: the edge guard ([`edge`]), the transport that tells the era and
//! checks the protocol's rules ([`transport`]), identity ([`identity`]), the pipeline that
//! routes it ([`pipeline`], [`catalog`], [`lists`]) and the upstream link that carries it
//! ([`upstream`]); replies come back through [`relay`] and [`adapt`].
//!
//! What it must never do: forward a client's credentials upstream, trust a session id as
//! identity, or log a secret.

mod adapt;
pub mod admin;
pub mod catalog;
pub mod config;
pub mod devidp;
pub mod edge;
pub mod gateway;
pub mod identity;
mod lists;
pub mod metrics;
mod notices;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
mod relay;
pub mod server;
pub mod session;
pub mod store;
pub mod transport;
pub mod upstream;

pub use config::Config;
pub use gateway::Gateway;
pub use server::{Running, start, start_on};
