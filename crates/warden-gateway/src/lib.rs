//! The Warden gateway: one MCP endpoint in front of many MCP servers.
//!
//! A request meets, in order: the edge guard ([`edge`]), identity ([`identity`]), the transport
//! that tells the era and checks the protocol's rules ([`transport`]), and then, as a [`call`]
//! value, the stages of the [`pipeline`] ([`stage`]): admission, routing, the policy decision,
//! consent, forwarding over an upstream link ([`upstream`]); every message of the reply comes
//! back through the reply stages. Refusals are one type, rendered in one place
//! ([`call::refusal`]).
//!
//! What it must never do: forward a client's credentials upstream, trust a session id as
//! identity, or log a secret.

pub mod admin;
pub mod audit;
mod body;
pub mod call;
pub mod catalog;
pub mod config;
pub mod connections;
pub mod consent;
pub mod devidp;
pub mod dlp;
pub mod edge;
pub mod gateway;
mod header_names;
pub mod identity;
pub mod integrity;
mod lists;
pub mod metrics;
mod notices;
pub mod outbound;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod server;
pub mod session;
pub mod stage;
pub mod store;
pub mod testing;
pub mod transport;
pub mod upstream;
pub mod vault;

pub use config::Config;
pub use gateway::Gateway;
pub use server::{Running, start, start_on, start_with};
