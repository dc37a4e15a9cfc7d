//! Configuration: a TOML file (and optionally an `mcpServers` JSON file) read into a validated
//! [`Config`]. Every problem is reported with its file, line and a fix; loading collects all of
//! them instead of stopping at the first.

mod audit;
mod dlp;
mod duration;
mod error;
mod identity;
mod integrity;
mod mcp_servers;
mod oauth;
mod raw;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use audit::{AuditConfig, Capture, FailMode};
pub use dlp::{Actions, DlpConfig, DlpScope, ScopeMatch};
pub use duration::parse_duration;
pub use error::{ConfigError, ConfigErrors};
pub use identity::{DEFAULT_ALGORITHMS, IdentityConfig, Introspection, OidcConfig, TestProfile};
pub use integrity::{FlagAction, IntegrityConfig, PinMode};
pub use oauth::{Grant, OAuthConfig};

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub identity: IdentityConfig,
    pub upstreams: Vec<UpstreamConfig>,
    pub logging: LoggingConfig,
    pub storage: StorageConfig,
    pub rate_limits: RateLimits,
    pub policy: PolicyConfig,
    pub consent: ConsentConfig,
    pub audit: AuditConfig,
    pub dlp: DlpConfig,
    /// `[outbound] allow`: hosts and networks metadata fetches may reach over http or at private
    /// addresses ([`crate::outbound`]).
    pub outbound: Vec<crate::outbound::Allowed>,
}

/// `[consent]`: how a call that needs a person's approval waits for it.
#[derive(Clone, Debug)]
pub struct ConsentConfig {
    /// How approvers sign in on the consent page; without it, calls that need consent are
    /// refused with a message saying so.
    pub sign_in: Option<ConsentSignIn>,
    /// How long a consent request can be decided.
    pub ttl: Duration,
    /// How long one request of a client is held waiting for the decision (under the SDK
    /// clients' 60-second timeout).
    pub hold: Duration,
    pub max_pending_per_user: usize,
    /// Calls held at once, over all users.
    pub max_held: usize,
}

/// Warden's consent page as an OpenID client of the organisation's provider.
#[derive(Clone)]
pub struct ConsentSignIn {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for ConsentSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentSignIn")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// `[policy]`: where the Cedar policies are and how they are read.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// The directory of `.cedar` files. Without policies nothing is allowed.
    pub dir: PathBuf,
    /// Offset of the organisation's local time from UTC, for `hour` and `weekday`.
    pub utc_offset_minutes: i32,
    /// How often to look for changed policy files; zero never reloads.
    pub reload_every: Duration,
}

/// A token bucket: `rate` calls per `per`, bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub rate: f64,
    pub per: Duration,
    pub burst: f64,
}

#[derive(Clone, Debug, Default)]
pub struct RateLimits {
    /// Each client address, before authentication.
    pub per_address: Option<RateLimit>,
    /// Each principal (user and agent), over all calls.
    pub per_principal: Option<RateLimit>,
    /// Each principal's calls of one tool, by exposed tool name.
    pub tools: BTreeMap<String, RateLimit>,
}

/// Where the embedded default keeps its state.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub dir: PathBuf,
    /// The SQLite database (API keys, revocations, grants); see [`crate::store`].
    pub sqlite: PathBuf,
    /// The vault's master keys, unless `WARDEN_VAULT_KEY` holds one; see [`crate::vault`].
    pub vault_key: PathBuf,
}

impl Config {
    /// Whether an upstream's header or environment refers to a vault secret.
    pub fn uses_vault(&self) -> bool {
        self.upstreams.iter().any(|u| {
            let values: Vec<&String> = match &u.transport {
                Transport::Stdio(s) => s.env.values().collect(),
                Transport::Http(h) => h.headers.values().collect(),
            };
            values.iter().any(|v| v.contains("${vault:")) || u.oauth().is_some()
        })
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The MCP endpoint path, `/mcp` by default.
    pub path: String,
    /// Origins allowed to call from a browser, besides those of the listen address itself.
    pub allowed_origins: Vec<String>,
    /// `Host` header values accepted (DNS-rebinding defence). Loopback names by default.
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub session_idle_timeout: Duration,
    /// Placed between an upstream's prefix and its tool or prompt names.
    pub name_separator: String,
    /// The exact URL clients connect to: the OAuth resource identifier of this gateway.
    pub public_url: String,
    /// Threads that serve requests, each an event loop of its own ([`crate::server`]); `None`:
    /// one per CPU core.
    /// Read by `warden serve` before it starts its runtime, and when it starts serving.
    pub workers: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    pub name: String,
    /// Exposed names are `prefix + separator + name`; an empty prefix exposes bare names.
    pub prefix: String,
    pub transport: Transport,
    pub timeout: Duration,
    /// Tags of this upstream's tools and prompts for policies, by their own name.
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
    /// How its tool definitions are pinned and checked.
    pub integrity: IntegrityConfig,
}

impl UpstreamConfig {
    /// How its users connect their own accounts, when they must.
    pub fn oauth(&self) -> Option<&OAuthConfig> {
        match &self.transport {
            Transport::Http(h) => h.oauth.as_deref(),
            Transport::Stdio(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Transport {
    Stdio(StdioConfig),
    Http(HttpConfig),
}

#[derive(Clone, Debug)]
pub struct StdioConfig {
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub isolation: Isolation,
    pub idle_timeout: Duration,
}

/// Whether each user gets a child process of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    PerUser,
    Shared,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Parsed once, at load, into what the upstream client uses.
    pub url: crate::upstream::Target,
    pub headers: BTreeMap<String, String>,
    pub era: EraPreference,
    pub isolation: Isolation,
    /// Each user calls it with their own account at the service (links are then per user).
    pub oauth: Option<Box<OAuthConfig>>,
}

/// Which era Warden speaks to an HTTP upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EraPreference {
    /// Try the modern era, fall back to legacy.
    Auto,
    Legacy,
    Modern,
}

#[derive(Clone, Debug)]
pub struct LoggingConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::one(ConfigError::file(
                path,
                format!("cannot read the file: {e}"),
                "check the path given to --config",
            ))
        })?;
        Config::from_toml(path, &text)
    }

    /// Validates config text; `path` names the file in errors and anchors relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        raw::build(path, text)
    }

    /// The URL clients connect to.
    pub fn mcp_url(&self) -> String {
        self.server.public_url.clone()
    }
}
