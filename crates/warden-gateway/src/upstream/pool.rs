//! Live links to every upstream, opened on first use, one per user where isolation asks for it,
//! re-opened with backoff after a crash and closed when idle.

use foldhash::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::client::Client;
use super::http::HttpLink;
use super::stdio::StdioLink;
use super::{Link, Notice, UpstreamError};
use warden_mcp::era::Era;

use crate::config::{EraPreference, Isolation, Transport, UpstreamConfig};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A link that lived this long before dying is not counted as a crash loop.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// A link per user (when isolated) and per era: Warden speaks to an upstream in the era of
/// the calling client whenever the upstream offers it, so nothing needs translating.
type Key = (Option<Arc<str>>, Era);

#[derive(Default)]
struct Slot {
    link: Option<Link>,
    last_used: Option<Instant>,
    opened: Option<Instant>,
    failures: u32,
    last_failure: Option<Instant>,
}

struct Upstream {
    config: UpstreamConfig,
    /// The connections to an HTTP upstream, shared by all its links.
    /// (None when the url is unusable, which `warden check` reports.)
    client: Option<Arc<Client>>,
    name: Arc<str>,
    slots: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Set once an upstream has shown it does not speak the modern era.
    legacy_only: AtomicBool,
}

impl Upstream {
    fn slot(&self, key: Key) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }
}

/// Counts for metrics.
#[derive(Clone, Debug, Default)]
pub struct PoolStats {
    /// (upstream, live links, whether the last open failed)
    pub upstreams: Vec<(String, usize, bool)>,
}

pub struct Pool {
    upstreams: Vec<Upstream>,
    notices: broadcast::Sender<Notice>,
    /// Where `${vault:NAME}` in headers and environments is read from.
    vault: Option<Arc<crate::vault::Vault>>,
    /// Users' own tokens, for upstreams with `oauth`.
    connections: Arc<crate::connections::Connections>,
}

impl Pool {
    pub fn new(
        configs: &[UpstreamConfig],
        notices: broadcast::Sender<Notice>,
        vault: Option<Arc<crate::vault::Vault>>,
        connections: Arc<crate::connections::Connections>,
    ) -> Pool {
        let upstreams = configs
            .iter()
            .map(|c| Upstream {
                name: Arc::from(c.name.as_str()),
                config: c.clone(),
                // Upstreams are reached exactly where configured: no redirect is followed (it
                // would carry the call, and later the injected credentials, elsewhere) and no
                // proxy from the environment is used.
                client: match &c.transport {
                    Transport::Http(h) => Some(Client::new(h.url.clone())),
                    Transport::Stdio(_) => None,
                },
                slots: Mutex::default(),
                legacy_only: AtomicBool::new(
                    matches!(&c.transport, Transport::Http(h) if h.era == EraPreference::Legacy),
                ),
            })
            .collect();
        Pool {
            upstreams,
            notices,
            vault,
            connections,
        }
    }

    /// `template` with its `${vault:NAME}` references replaced, for upstream `name`; the error
    /// names the secret, never a value.
    async fn credential(&self, name: &str, template: &str) -> Result<String, UpstreamError> {
        if !template.contains("${vault:") {
            return Ok(template.to_string());
        }
        crate::vault::resolve(self.vault.as_deref(), template)
            .await
            .map(|v| v.to_string())
            .map_err(|e| UpstreamError::Handshake(name.to_string(), format!("credential: {e}")))
    }

    /// Whether `user` has connected their account at upstream `index` (its token refreshed if
    /// it was about to expire).
    async fn account(
        &self,
        index: usize,
        name: &str,
        oauth: &crate::config::OAuthConfig,
        user: &Arc<str>,
    ) -> Result<(), UpstreamError> {
        match self.connections.ensure(index, user).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(UpstreamError::Handshake(
                name.to_string(),
                format!(
                    "{user} has not connected an account at {}; calling one of its tools asks them to",
                    oauth.issuer
                ),
            )),
            Err(e) => Err(UpstreamError::Handshake(name.to_string(), e.to_string())),
        }
    }

    pub fn config(&self, index: usize) -> &UpstreamConfig {
        &self.upstreams[index].config
    }

    pub fn len(&self) -> usize {
        self.upstreams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.upstreams.is_empty()
    }

    /// The live link to upstream `index` for `user`, in era `want` if the upstream speaks it,
    /// opening one if needed.
    pub async fn link(
        &self,
        index: usize,
        user: &Arc<str>,
        want: Era,
    ) -> Result<Link, UpstreamError> {
        // A user's own account: connected, its token fresh (a disconnected account's links
        // are done, see `HttpLink::is_alive`).
        if let Some(oauth) = self.upstreams[index].config.oauth() {
            self.account(index, &self.upstreams[index].name, oauth, user)
                .await?;
        }
        match self.live(index, user, want) {
            Some(link) => Ok(link),
            // Opening is rare and its future large: boxed, it does not weigh on every call.
            None => Box::pin(self.open(index, user, want)).await,
        }
    }

    /// The slot's key for `user` and `want`.
    fn key(&self, index: usize, user: &Arc<str>, want: Era) -> Key {
        let upstream = &self.upstreams[index];
        let isolation = match &upstream.config.transport {
            Transport::Stdio(s) => s.isolation,
            Transport::Http(h) => h.isolation,
        };
        let want = if upstream.legacy_only.load(Ordering::Relaxed) {
            Era::Legacy
        } else {
            want
        };
        (
            (isolation == Isolation::PerUser).then(|| user.clone()),
            want,
        )
    }

    /// The open link of a slot nobody is opening right now, if it is alive.
    fn live(&self, index: usize, user: &Arc<str>, want: Era) -> Option<Link> {
        let slot = self.upstreams[index].slot(self.key(index, user, want));
        let mut slot = slot.try_lock().ok()?;
        let link = slot.link.clone().filter(Link::is_alive)?;
        slot.last_used = Some(Instant::now());
        Some(link)
    }

    async fn open(&self, index: usize, user: &Arc<str>, want: Era) -> Result<Link, UpstreamError> {
        let upstream = &self.upstreams[index];
        // Checked in `link`: a user without an account is not a failing upstream.
        let bearer = upstream
            .config
            .oauth()
            .map(|_| self.connections.bearer(index, user));
        let key = self.key(index, user, want);
        let (owner, want) = key.clone();
        let owner_for_open = owner.clone();
        let slot = upstream.slot(key);
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if let Some(link) = slot.link.clone() {
            if link.is_alive() {
                slot.last_used = Some(now);
                return Ok(link);
            }
            slot.link = None;
            if link.superseded() {
                // Not a failure: its session belongs to an account that is gone.
                tokio::spawn(async move { link.close().await });
            } else {
                let lived = slot.opened.map_or(Duration::ZERO, |o| now - o);
                slot.failures = if lived > STABLE_AFTER {
                    1
                } else {
                    slot.failures + 1
                };
                slot.last_failure = Some(now);
            }
        }
        if slot.failures > 0 {
            let wait = backoff(slot.failures);
            let since = slot.last_failure.map_or(wait, |t| now - t);
            if since < wait {
                tokio::time::sleep(wait - since).await;
            }
        }
        let opened = match &upstream.config.transport {
            Transport::Stdio(s) => {
                let mut s = s.clone();
                for v in s.env.values_mut() {
                    *v = self.credential(&upstream.name, v).await?;
                }
                StdioLink::start(
                    upstream.name.clone(),
                    owner_for_open.clone(),
                    &s,
                    self.notices.clone(),
                    HANDSHAKE_TIMEOUT,
                    want,
                )
                .await
            }
            Transport::Http(h) => match &upstream.client {
                Some(client) => {
                    let mut h = h.clone();
                    for v in h.headers.values_mut() {
                        *v = self.credential(&upstream.name, v).await?;
                    }
                    HttpLink::start(
                        upstream.name.clone(),
                        owner_for_open,
                        &h,
                        client.clone(),
                        self.notices.clone(),
                        want,
                        bearer,
                    )
                    .await
                }
                None => Err(UpstreamError::Handshake(
                    upstream.name.to_string(),
                    format!("the url {:?} is not usable", h.url.as_str()),
                )),
            },
        };
        match opened {
            Ok(link) => {
                if want == Era::Modern && link.info().era == Era::Legacy {
                    // File it where legacy calls will look for it, so one child serves both.
                    upstream.legacy_only.store(true, Ordering::Relaxed);
                    drop(slot);
                    let legacy = upstream.slot((owner, Era::Legacy));
                    let mut legacy = legacy.lock().await;
                    if let Some(existing) = legacy.link.clone().filter(Link::is_alive) {
                        link.close().await;
                        return Ok(existing);
                    }
                    legacy.link = Some(link.clone());
                    legacy.opened = Some(Instant::now());
                    legacy.last_used = legacy.opened;
                    return Ok(link);
                }
                tracing::info!(upstream = %upstream.name, era = link.info().era.as_str(), version = %link.info().protocol_version, "upstream link opened");
                slot.link = Some(link.clone());
                slot.opened = Some(Instant::now());
                slot.last_used = slot.opened;
                Ok(link)
            }
            Err(e) => {
                slot.failures += 1;
                slot.last_failure = Some(Instant::now());
                tracing::warn!(upstream = %upstream.name, error = %e, "upstream could not be opened");
                Err(e)
            }
        }
    }

    /// Closes stdio links unused for longer than their idle timeout.
    pub async fn close_idle(&self) {
        for upstream in &self.upstreams {
            let Transport::Stdio(stdio) = &upstream.config.transport else {
                continue;
            };
            let slots: Vec<_> = upstream
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            for slot in slots {
                let Ok(mut slot) = slot.try_lock() else {
                    continue;
                };
                let idle = slot
                    .last_used
                    .is_some_and(|t| t.elapsed() > stdio.idle_timeout);
                let busy = matches!(&slot.link, Some(Link::Stdio(l)) if l.calls_in_flight() > 0);
                if idle
                    && !busy
                    && let Some(link) = slot.link.take()
                {
                    tracing::info!(upstream = %upstream.name, "closing idle upstream link");
                    link.close().await;
                }
            }
        }
    }

    pub fn stats(&self) -> PoolStats {
        let upstreams = self
            .upstreams
            .iter()
            .map(|u| {
                let slots: Vec<_> = u
                    .slots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect();
                let (mut live, mut failing) = (0, false);
                for s in slots {
                    if let Ok(s) = s.try_lock() {
                        live += usize::from(s.link.as_ref().is_some_and(Link::is_alive));
                        failing |= s.link.is_none() && s.failures > 0;
                    }
                }
                (u.name.to_string(), live, failing)
            })
            .collect();
        PoolStats { upstreams }
    }

    /// Closes every link (children are killed, upstream sessions ended).
    pub async fn shutdown(&self) {
        for upstream in &self.upstreams {
            let slots: Vec<_> = upstream
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .map(|(_, s)| s)
                .collect();
            for slot in slots {
                if let Some(link) = slot.lock().await.link.take() {
                    link.close().await;
                }
            }
        }
    }
}

fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(8);
    (Duration::from_millis(50) * 2u32.pow(exp)).min(Duration::from_secs(10))
}
