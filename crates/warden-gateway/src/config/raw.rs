//! The config file as written, and its validation into [`Config`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

use super::*;

/// The most `[server] workers` may ask for: a typo of 10000 would start that many threads.
const MAX_WORKERS: usize = 1024;
const WORKERS_FIX: &str =
    "leave it out for one per CPU core, or give the number of threads to serve on";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    identity: Option<Spanned<super::identity::RawIdentity>>,
    #[serde(default)]
    upstreams: BTreeMap<Spanned<String>, Spanned<RawUpstream>>,
    mcp_servers_file: Option<Spanned<String>>,
    #[serde(default)]
    logging: RawLogging,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    rate_limits: RawRateLimits,
    policy: Option<Spanned<RawPolicy>>,
    consent: Option<Spanned<RawConsent>>,
    audit: Option<Spanned<super::audit::RawAudit>>,
    dlp: Option<Spanned<super::dlp::RawDlp>>,
    #[serde(default)]
    outbound: RawOutbound,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutbound {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConsent {
    client_id: Option<String>,
    client_secret: Option<String>,
    issuer: Option<String>,
    ttl: Option<String>,
    hold: Option<String>,
    max_pending_per_user: Option<usize>,
    max_held: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    dir: Option<String>,
    utc_offset: Option<String>,
    reload_every: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRateLimits {
    per_address: Option<Spanned<RawLimit>>,
    per_principal: Option<Spanned<RawLimit>>,
    #[serde(default)]
    tools: BTreeMap<String, Spanned<RawLimit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    rate: f64,
    per: Option<String>,
    burst: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: Option<String>,
    vault_key: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    allowed_hosts: Option<Vec<String>>,
    max_body_bytes: Option<usize>,
    session_idle_timeout: Option<Spanned<String>>,
    name_separator: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    workers: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub era: Option<String>,
    pub prefix: Option<String>,
    pub isolation: Option<String>,
    pub idle_timeout: Option<String>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
    pub integrity: Option<super::integrity::RawIntegrity>,
    pub oauth: Option<super::oauth::RawOAuth>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLogging {
    format: Option<String>,
    level: Option<String>,
}

/// Collects errors while building, each anchored in the text.
pub(super) struct Check<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub errors: Vec<ConfigError>,
}

impl Check<'_> {
    pub fn err(&mut self, offset: usize, message: impl Into<String>, fix: impl Into<String>) {
        self.errors
            .push(ConfigError::at(self.file, self.text, offset, message, fix));
    }
}

pub(super) fn build(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let fix = if e.message().contains("unknown field") {
            "remove or rename the key; docs/configuration.md lists every key"
        } else {
            "correct the TOML syntax at this place"
        };
        ConfigErrors::one(ConfigError::at(
            path,
            text,
            offset,
            e.message().trim().to_string(),
            fix,
        ))
    })?;
    let mut check = Check {
        file: path,
        text,
        errors: Vec::new(),
    };
    let server = server(&mut check, raw.server);
    let identity = super::identity::identity(&mut check, raw.identity, &server);
    let storage = storage(&mut check, raw.storage, path);
    let rate_limits = rate_limits(&mut check, raw.rate_limits);
    let policy = policy(&mut check, raw.policy, path);
    let consent = consent(&mut check, raw.consent, &identity);
    let audit = super::audit::audit(&mut check, raw.audit, &storage.dir, &server, path);
    let dlp = super::dlp::dlp(&mut check, raw.dlp, &storage.dir, path);
    let mut outbound = Vec::new();
    for a in raw.outbound.allow {
        match crate::outbound::Allowed::parse(a.as_ref()) {
            Ok(allowed) => outbound.push(allowed),
            Err(e) => check.err(
                a.span().start,
                format!("outbound.allow: {e}"),
                "write a host name, an address or a network like \"10.0.0.0/8\"",
            ),
        }
    }
    let mut upstreams = Vec::new();
    for (name, up) in raw.upstreams {
        let (name_span, up_span) = (name.span().start, up.span().start);
        if let Some(u) = upstream(
            &mut check,
            name.into_inner(),
            name_span,
            up.into_inner(),
            up_span,
            path,
        ) {
            upstreams.push(u);
        }
    }
    if let Some(file) = raw.mcp_servers_file {
        let offset = file.span().start;
        let json_path = relative_to(path, file.as_ref());
        match mcp_servers::read(&json_path) {
            Ok(found) => upstreams.extend(found),
            Err(errors) if errors.is_empty() => check.err(
                offset,
                format!("cannot read {}", json_path.display()),
                "check the mcp_servers_file path",
            ),
            Err(errors) => check.errors.extend(errors),
        }
    }
    check_upstream_names(&mut check, &upstreams, &server.name_separator);
    if consent.sign_in.is_none()
        && let Some(u) = upstreams.iter().find(|u| {
            u.oauth()
                .is_some_and(|o| o.grant == super::Grant::AuthorizationCode)
        })
    {
        check.errors.push(ConfigError::file(
            check.file,
            format!(
                "upstream {:?} needs each user's own account, which users connect on the consent page, and no consent page is configured",
                u.name
            ),
            "set [consent] client_id and client_secret (docs/credentials.md)",
        ));
    }
    let logging = logging(&mut check, raw.logging);
    if check.errors.is_empty() {
        Ok(Config {
            server,
            identity,
            upstreams,
            logging,
            storage,
            rate_limits,
            policy,
            consent,
            audit,
            dlp,
            outbound,
        })
    } else {
        Err(ConfigErrors(check.errors))
    }
}

fn server(check: &mut Check, raw: RawServer) -> ServerConfig {
    let listen = match raw.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(l) => l.as_ref().parse().unwrap_or_else(|_| {
            check.err(
                l.span().start,
                format!("listen = {:?} is not an address", l.as_ref()),
                "write an IP address and port, like \"127.0.0.1:8080\"",
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }),
    };
    let path = match raw.path {
        None => "/mcp".to_string(),
        Some(p) => match path_problem(p.as_ref()) {
            None => p.into_inner(),
            Some((problem, fix)) => {
                check.err(
                    p.span().start,
                    format!("path = {:?} {problem}", p.as_ref()),
                    fix,
                );
                "/mcp".to_string()
            }
        },
    };
    let public_url = match raw.public_url {
        None => format!("http://{listen}{path}"),
        Some(u) if u.as_ref().starts_with("https://") || u.as_ref().starts_with("http://") => {
            u.into_inner()
        }
        Some(u) => {
            check.err(
                u.span().start,
                format!("public_url = {:?} is not an http(s) URL", u.as_ref()),
                "write the exact URL clients connect to, like \"https://warden.example.com/mcp\"",
            );
            format!("http://{listen}{path}")
        }
    };
    let name_separator = match raw.name_separator {
        None => "__".to_string(),
        Some(s) if !s.as_ref().is_empty() && s.as_ref().chars().all(is_name_char) => s.into_inner(),
        Some(s) => {
            check.err(
                s.span().start,
                "name_separator must be non-empty and use only A-Z a-z 0-9 _ . -",
                "use \"__\" (the default) or \".\"",
            );
            "__".to_string()
        }
    };
    let mut allowed_hosts = raw.allowed_hosts.unwrap_or_default();
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        allowed_hosts.push(host.to_string());
    }
    allowed_hosts.push(listen.ip().to_string());
    let workers = match raw.workers {
        None => None,
        Some(w) => match usize::try_from(*w.as_ref()) {
            Ok(n @ 1..=MAX_WORKERS) => Some(n),
            _ => {
                check.err(
                    w.span().start,
                    format!(
                        "workers = {} is not between 1 and {MAX_WORKERS}",
                        w.as_ref()
                    ),
                    WORKERS_FIX,
                );
                None
            }
        },
    };
    ServerConfig {
        listen,
        path,
        allowed_origins: raw.allowed_origins,
        allowed_hosts,
        max_body_bytes: raw.max_body_bytes.unwrap_or(4 << 20),
        session_idle_timeout: duration_or(check, raw.session_idle_timeout, 1800),
        name_separator,
        public_url,
        workers,
    }
}

/// Paths of Warden's own pages, which the MCP endpoint may neither be nor sit under.
const OWN_PATHS: [&str; 6] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/admin",
    "/consent",
    "/.well-known",
];

/// What is wrong with `path` as the MCP endpoint's path, and its fix. The path is matched as
/// it is written, so it may hold only plain characters (no `{}` or `*`, which a router reads as
/// a pattern, nor anything a URL would have to escape), and it must not take one of Warden's
/// own pages.
fn path_problem(path: &str) -> Option<(String, &'static str)> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '_' | '~');
    if !path.starts_with('/') {
        return Some((
            "is not a URL path".into(),
            "start it with '/', like \"/mcp\"",
        ));
    }
    if let Some(c) = path.chars().find(|&c| !plain(c)) {
        return Some((
            format!("holds {c:?}, which the endpoint's path may not"),
            "use letters, digits and - . _ ~ between the slashes, like \"/mcp\"",
        ));
    }
    if path.contains("//") {
        return Some((
            "has an empty segment".into(),
            "write one '/' between segments, like \"/api/mcp\"",
        ));
    }
    // Clients resolve `.` and `..` before they send a URL: such a path is never asked for.
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Some((
            "has a '.' or '..' segment, which clients resolve away".into(),
            "write the path as clients send it, like \"/mcp\"",
        ));
    }
    let own = OWN_PATHS.iter().find(|own| {
        path.strip_prefix(**own)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })?;
    Some((
        format!("is taken by Warden's own {own}"),
        "choose another path, like \"/mcp\"",
    ))
}

pub(super) fn upstream(
    check: &mut Check,
    name: String,
    name_at: usize,
    raw: RawUpstream,
    at: usize,
    file: &Path,
) -> Option<UpstreamConfig> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        check.err(
            name_at,
            format!("upstream name {name:?} is not allowed"),
            "use 1-64 characters from A-Z a-z 0-9 _ -",
        );
    }
    let isolation = |check: &mut Check, default| match raw.isolation.as_deref() {
        None => default,
        Some("per-user") => Isolation::PerUser,
        Some("shared") => Isolation::Shared,
        Some(other) => {
            check.err(
                at,
                format!("isolation = {other:?} is not known"),
                "use \"per-user\" or \"shared\"",
            );
            default
        }
    };
    let transport = match (&raw.command, &raw.url) {
        (Some(_), None) if raw.oauth.is_some() => {
            check.err(
                at,
                format!("upstream {name:?}: oauth is for HTTP upstreams"),
                "give a stdio server its credential in env = { NAME = \"${vault:NAME}\" }",
            );
            return None;
        }
        (Some(command), None) => Transport::Stdio(StdioConfig {
            command: command.clone(),
            args: raw.args.clone(),
            env: raw.env.clone(),
            cwd: raw.cwd.as_deref().map(|c| relative_to(file, c)),
            isolation: isolation(check, Isolation::PerUser),
            idle_timeout: duration_text(check, at, raw.idle_timeout.as_deref(), 600),
        }),
        (None, Some(url)) => {
            let target = match crate::upstream::Target::parse(url) {
                Ok(target) => target,
                Err(why) => {
                    check.err(
                        at,
                        format!("upstream {name:?}: url {url:?} is not usable: {why}"),
                        "write the server's full MCP endpoint, like \"http://127.0.0.1:9000/mcp\"",
                    );
                    return None;
                }
            };
            let era = match raw.era.as_deref() {
                None | Some("auto") => EraPreference::Auto,
                Some("legacy") => EraPreference::Legacy,
                Some("modern") => EraPreference::Modern,
                Some(other) => {
                    check.err(
                        at,
                        format!("era = {other:?} is not known"),
                        "use \"auto\", \"legacy\" or \"modern\"",
                    );
                    EraPreference::Auto
                }
            };
            let oauth = raw
                .oauth
                .clone()
                .and_then(|o| super::oauth::oauth(check, at, &name, url, o))
                .map(Box::new);
            if oauth.is_some()
                && raw
                    .headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("authorization"))
            {
                check.err(
                    at,
                    format!("upstream {name:?}: headers.Authorization cannot go with oauth"),
                    "remove it: each user's own token is the upstream's Authorization",
                );
            }
            // A user's own account: their calls never share a link (or its session) with another's.
            let isolation = match (&oauth, raw.isolation.as_deref()) {
                (Some(_), Some("shared")) => {
                    check.err(
                        at,
                        format!("upstream {name:?}: isolation = \"shared\" cannot go with oauth"),
                        "remove isolation: per-user accounts always get per-user links",
                    );
                    Isolation::PerUser
                }
                (Some(_), _) => Isolation::PerUser,
                (None, _) => isolation(check, Isolation::Shared),
            };
            Transport::Http(HttpConfig {
                url: target,
                headers: raw.headers.clone(),
                era,
                isolation,
                oauth,
            })
        }
        (Some(_), Some(_)) => {
            check.err(
                at,
                format!("upstream {name:?} has both command and url"),
                "keep command (a stdio server) or url (an HTTP server), not both",
            );
            return None;
        }
        (None, None) => {
            check.err(
                at,
                format!("upstream {name:?} has neither command nor url"),
                "add command = \"…\" for a stdio server or url = \"…\" for an HTTP server",
            );
            return None;
        }
    };
    let timeout = duration_text(check, at, raw.timeout.as_deref(), 120);
    let integrity = super::integrity::integrity(check, at, raw.integrity);
    Some(UpstreamConfig {
        prefix: raw.prefix.unwrap_or_else(|| name.clone()),
        name,
        transport,
        timeout,
        tags: raw.tags,
        integrity,
    })
}

fn check_upstream_names(check: &mut Check, upstreams: &[UpstreamConfig], separator: &str) {
    let mut seen = std::collections::HashSet::new();
    for u in upstreams {
        if !seen.insert(&u.name) {
            check.errors.push(ConfigError::file(
                check.file,
                format!("upstream {:?} is defined twice", u.name),
                "rename one of them",
            ));
        }
        if u.prefix.contains(separator) {
            check.errors.push(ConfigError::file(
                check.file,
                format!(
                    "upstream {:?}: prefix {:?} contains the name separator {separator:?}",
                    u.name, u.prefix
                ),
                "choose a prefix without the separator, or change server.name_separator",
            ));
        }
    }
}

fn rate_limits(check: &mut Check, raw: RawRateLimits) -> RateLimits {
    let mut one = |l: Spanned<RawLimit>| -> Option<RateLimit> {
        let at = l.span().start;
        let l = l.into_inner();
        let per = duration_text(check, at, l.per.as_deref(), 1);
        let burst = l.burst.unwrap_or(l.rate);
        if !(l.rate > 0.0 && burst >= 1.0 && !per.is_zero()) {
            check.err(
                at,
                "a rate limit needs rate > 0, burst >= 1 and a non-zero per",
                "write it like { rate = 10, per = \"1s\", burst = 20 }",
            );
            return None;
        }
        Some(RateLimit {
            rate: l.rate,
            per,
            burst,
        })
    };
    RateLimits {
        per_address: raw.per_address.and_then(&mut one),
        per_principal: raw.per_principal.and_then(&mut one),
        tools: raw
            .tools
            .into_iter()
            .filter_map(|(t, l)| one(l).map(|l| (t, l)))
            .collect(),
    }
}

fn policy(check: &mut Check, raw: Option<Spanned<RawPolicy>>, file: &Path) -> PolicyConfig {
    let at = raw.as_ref().map_or(0, |r| r.span().start);
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let dir = relative_to(file, raw.dir.as_deref().unwrap_or("policies"));
    let utc_offset_minutes = match raw.utc_offset.as_deref().map(parse_offset) {
        None => 0,
        Some(Some(m)) => m,
        Some(None) => {
            check.err(
                at,
                "utc_offset must look like \"+02:00\" or \"-05:30\"",
                "write the organisation's offset from UTC",
            );
            0
        }
    };
    PolicyConfig {
        dir,
        utc_offset_minutes,
        reload_every: duration_text(check, at, raw.reload_every.as_deref(), 1),
    }
}

fn consent(
    check: &mut Check,
    raw: Option<Spanned<RawConsent>>,
    identity: &IdentityConfig,
) -> ConsentConfig {
    let at = raw.as_ref().map_or(0, |r| r.span().start);
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let ttl = duration_text(check, at, raw.ttl.as_deref(), 600);
    let hold = duration_text(check, at, raw.hold.as_deref(), 50);
    if hold.is_zero() || hold >= Duration::from_secs(60) {
        check.err(
            at,
            format!(
                "consent.hold = {:?} must be between 1s and 59s",
                raw.hold.unwrap_or_default()
            ),
            "keep it under the SDK clients' 60-second request timeout, like \"50s\"",
        );
    }
    let sign_in = match (raw.client_id, raw.client_secret) {
        (Some(client_id), Some(client_secret)) => {
            let issuer = raw
                .issuer
                .or_else(|| identity.oidc.as_ref().map(|o| o.issuer.clone()));
            match issuer {
                Some(issuer) => Some(ConsentSignIn {
                    issuer,
                    client_id,
                    client_secret,
                }),
                None => {
                    check.err(
                        at,
                        "consent needs an OpenID issuer to sign approvers in",
                        "set consent.issuer, or identity.issuer for both",
                    );
                    None
                }
            }
        }
        (None, None) => None,
        _ => {
            check.err(
                at,
                "consent.client_id and consent.client_secret go together",
                "register Warden's consent page at the identity provider and set both",
            );
            None
        }
    };
    ConsentConfig {
        sign_in,
        ttl,
        hold,
        max_pending_per_user: raw.max_pending_per_user.unwrap_or(20),
        max_held: raw.max_held.unwrap_or(1000),
    }
}

/// `+HH:MM` / `-HH:MM` as minutes.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

fn storage(check: &mut Check, raw: RawStorage, file: &Path) -> StorageConfig {
    let _ = check;
    let dir = relative_to(file, raw.path.as_deref().unwrap_or("warden-data"));
    StorageConfig {
        sqlite: dir.join("warden.db"),
        vault_key: match raw.vault_key.as_deref() {
            Some(p) => relative_to(file, p),
            None => dir.join("vault.key"),
        },
        dir,
    }
}

fn logging(check: &mut Check, raw: RawLogging) -> LoggingConfig {
    let format = match raw.format.as_deref() {
        None | Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(other) => {
            check.errors.push(ConfigError::file(
                check.file,
                format!("logging.format = {other:?} is not known"),
                "use \"json\" or \"text\"",
            ));
            LogFormat::Json
        }
    };
    LoggingConfig {
        format,
        level: raw.level.unwrap_or_else(|| "info".into()),
    }
}

fn duration_or(
    check: &mut Check,
    raw: Option<Spanned<String>>,
    default_secs: u64,
) -> std::time::Duration {
    match raw {
        None => std::time::Duration::from_secs(default_secs),
        Some(d) => duration_text(check, d.span().start, Some(d.as_ref()), default_secs),
    }
}

pub(super) fn duration_text(
    check: &mut Check,
    at: usize,
    raw: Option<&str>,
    default_secs: u64,
) -> std::time::Duration {
    match raw.map(parse_duration) {
        None => std::time::Duration::from_secs(default_secs),
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            check.err(at, e, "write a duration like 75us, 250ms, 30s, 10m or 1h");
            std::time::Duration::from_secs(default_secs)
        }
    }
}

pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

pub(super) fn relative_to(config_file: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    // Joined and without `.` parts, so `path = "."` names the config's own directory plainly.
    config_file
        .parent()
        .map_or_else(|| p.to_path_buf(), |dir| dir.join(p))
        .components()
        .collect()
}
