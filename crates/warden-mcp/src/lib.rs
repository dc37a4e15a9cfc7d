//! Model Context Protocol on the wire, as the Warden gateway sees it.
//!
//! This crate is the first stage of a call: it turns the bytes of one HTTP body into a
//! [`Message`] and back without losing anything, tells which protocol era a request belongs
//! to ([`era`]), checks the routing headers of the modern era against the body ([`headers`]),
//! and reads and writes Server-Sent Events ([`sse`]).
//!
//! What it must never do: perform I/O, hold state, or normalise a message. A message that
//! passes through Warden keeps every field it arrived with, known or not, in the order it
//! arrived; only the fields the gateway deliberately rewrites (ids, tool names) change.

pub mod era;
pub mod headers;
pub mod member;
mod message;
pub mod method;
pub mod params;
pub mod sse;

pub use message::{Id, Kind, Message, ParamsAs, ParseError, RpcError, codes};
pub use method::Method;
