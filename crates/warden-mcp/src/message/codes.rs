//! JSON-RPC and MCP error codes the gateway produces or inspects.

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Legacy era: the resource URI is unknown.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// Modern era: a routing header does not match the body, or a required header is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// Modern era: the request needs a client capability that was not declared.
pub const MISSING_CAPABILITY: i64 = -32021;
/// Modern era: the protocol version is not supported.
pub const UNSUPPORTED_VERSION: i64 = -32022;
/// Legacy era: the call needs the user to open a URL first.
pub const URL_ELICITATION_REQUIRED: i64 = -32042;
/// Gateway-specific: the upstream server failed or could not be reached.
pub const UPSTREAM_UNAVAILABLE: i64 = -32050;
/// Gateway-specific: the upstream did not answer in time.
pub const UPSTREAM_TIMEOUT: i64 = -32051;
/// Gateway-specific: the request was refused by a limit (rate, size).
pub const LIMITED: i64 = -32052;
/// Gateway-specific: policy allows the call only once the user approves it.
pub const CONSENT_REQUIRED: i64 = -32053;
/// Gateway-specific: a person declined the call on the consent page, or the request for
/// consent expired undecided; the call did not run.
pub const CONSENT_DENIED: i64 = -32054;
/// Gateway-specific: the audit trail cannot record the call, so it did not run (or its
/// result was withheld).
pub const AUDIT_UNAVAILABLE: i64 = -32055;
/// Gateway-specific: data policy withheld the call or its result (a DLP finding set to
/// block, or a tool definition that changed and awaits approval).
pub const WITHHELD: i64 = -32056;
