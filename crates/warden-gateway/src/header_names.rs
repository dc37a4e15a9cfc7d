//! The transport's header names as `HeaderName`s, made once: a header map looked up or filled
//! by a `&str` name checks and lowercases that name on every use.

use http::HeaderName;
use warden_mcp::headers;

pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static(headers::PROTOCOL_VERSION);
pub const SESSION_ID: HeaderName = HeaderName::from_static(headers::SESSION_ID);
pub const METHOD: HeaderName = HeaderName::from_static(headers::METHOD);
pub const NAME: HeaderName = HeaderName::from_static(headers::NAME);
