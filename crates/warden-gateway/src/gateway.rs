//! The gateway's shared state: config, identity, sessions, upstream pool, names, metrics.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::session::Sessions;
use crate::upstream::{Notice, Pool};

pub struct Gateway {
    pub config: Arc<Config>,
    pub identity: Identity,
    pub sessions: Sessions,
    pub pool: Pool,
    pub catalog: Catalog,
    pub notices: broadcast::Sender<Notice>,
    pub metrics: Metrics,
    pub limiter: crate::ratelimit::Limiter,
    pub policies: crate::policy::Policies,
    /// Consent requests, grants and the consent page's sign-in.
    pub consents: crate::consent::Consents,
    /// The tamper-evident record of every call, decision and answer.
    pub audit: Arc<crate::audit::Audit>,
    /// Upstream secrets and users' tokens, sealed in the store; `None` when nothing uses it.
    pub vault: Option<Arc<crate::vault::Vault>>,
    /// Users' own accounts at upstreams that need them.
    pub connections: Arc<crate::connections::Connections>,
    /// Tool definitions pinned, checked and withheld.
    pub integrity: crate::integrity::Integrity,
    /// The DLP engines; `None` when `[dlp]` is off.
    pub dlp: Option<crate::dlp::Dlp>,
    /// A stage that holds calls, installed by tests in the consent stage's place
    /// ([`crate::server::start_with`]); `None` in a gateway that serves.
    pub waiting: Option<Arc<dyn crate::call::RequestStage>>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the policies do not load (nothing is allowed without them):\n{0}")]
    Policies(#[from] warden_policy::PolicyErrors),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Dlp(#[from] crate::dlp::DlpError),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

impl Gateway {
    /// How a request's `params` is best read: as a tree at once where the call's path reads it
    /// so anyway (a policy on the arguments, DLP, the audit trail), else kept as text.
    pub fn params_as(&self) -> warden_mcp::ParamsAs {
        if self.dlp.is_some() || self.audit.is_on() || self.policies.reads_arguments() {
            warden_mcp::ParamsAs::Tree
        } else {
            warden_mcp::ParamsAs::Text
        }
    }

    pub async fn new(config: Config) -> Result<Arc<Gateway>, StartError> {
        Gateway::with_stage(config, None).await
    }

    /// A gateway with a waiting stage of a test's own.
    pub async fn with_stage(
        config: Config,
        waiting: Option<Arc<dyn crate::call::RequestStage>>,
    ) -> Result<Arc<Gateway>, StartError> {
        let (notices, _) = broadcast::channel(1024);
        let prefixes = config.upstreams.iter().map(|u| u.prefix.clone()).collect();
        // Every fetch of metadata (discovery, JWKS, introspection, the consent page's token
        // exchange) goes through the SSRF guard.
        let http = crate::outbound::Outbound::new(config.outbound.clone());
        // The log's writer reads the count of calls in flight (its commit delay).
        let mut metrics = Metrics::new();
        // Once, at start: reading the log back is the price of recovering it after a crash.
        let audit = Arc::new(crate::audit::Audit::open(
            &config,
            &metrics.calls_in_flight,
        )?);
        let identity = Identity::new(&config, http.clone()).await?;
        let consents = crate::consent::Consents::new(
            &config,
            identity.store().cloned(),
            http.clone(),
            audit.clone(),
        );
        let dlp = crate::dlp::Dlp::open(&config.dlp)?;
        let vault = match identity.store() {
            Some(store) if config.uses_vault() => {
                let keys = crate::vault::KeySource::from_env_or(&config.storage.vault_key);
                Some(Arc::new(crate::vault::Vault::open(keys, store.clone())?))
            }
            _ => None,
        };
        let connections = Arc::new(crate::connections::Connections::new(
            &config,
            identity.store().cloned(),
            vault.clone(),
            http,
        ));
        metrics.register_audit(&audit);
        let gateway = Arc::new(Gateway {
            identity,
            consents,
            audit,
            dlp,
            integrity: Default::default(),
            sessions: Sessions::new(config.server.session_idle_timeout),
            pool: Pool::new(
                &config.upstreams,
                notices.clone(),
                vault.clone(),
                connections.clone(),
            ),
            vault,
            connections,
            catalog: Catalog::new(&config.server.name_separator, prefixes),
            notices,
            metrics,
            limiter: crate::ratelimit::Limiter::new(&config.rate_limits),
            policies: crate::policy::Policies::load(&config.policy, config.dlp.detectors())?,
            waiting,
            config: Arc::new(config),
        });
        let loaded = Ok(gateway.policies.current().len());
        let record = crate::audit::records::policies(&gateway.config.policy.dir, loaded);
        gateway.audit.write_later(record);
        spawn_housekeeping(
            Arc::downgrade(&gateway),
            housekeeping_period(&gateway.config),
        );
        spawn_policy_reload(Arc::downgrade(&gateway), gateway.config.policy.reload_every);
        Ok(gateway)
    }
}

/// Looks for changed policy files, while the gateway lives.
fn spawn_policy_reload(gateway: std::sync::Weak<Gateway>, every: Duration) {
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(g) = gateway.upgrade() else { return };
            let outcome = tokio::task::block_in_place(|| g.policies.reload_if_changed());
            g.metrics.policy_reload(&outcome);
            let loaded = match &outcome {
                crate::policy::Reload::Unchanged => continue,
                crate::policy::Reload::Loaded(n) => Ok(*n),
                crate::policy::Reload::Refused(e) => Err(e.to_string()),
            };
            let record = crate::audit::records::policies(&g.config.policy.dir, loaded);
            g.audit.write_later(record);
        }
    });
}

/// How often to look for idle sessions and links: often enough that nothing outlives its idle
/// timeout by more than half of it, and at most every 5 s.
fn housekeeping_period(config: &Config) -> Duration {
    let stdio = config.upstreams.iter().filter_map(|u| match &u.transport {
        crate::config::Transport::Stdio(s) => Some(s.idle_timeout),
        crate::config::Transport::Http(_) => None,
    });
    let shortest = stdio
        .chain([config.server.session_idle_timeout])
        .min()
        .unwrap_or(Duration::from_secs(10));
    (shortest / 2).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

/// How often ended grants and consent requests are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Ends idle sessions and closes idle upstream links, and deletes ended grants, while the
/// gateway lives.
fn spawn_housekeeping(gateway: std::sync::Weak<Gateway>, period: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        let mut purge = std::time::Instant::now();
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(g) = gateway.upgrade() else { return };
            g.sessions.end_idle();
            g.limiter.forget_full(std::time::Instant::now());
            g.pool.close_idle().await;
            if let Some(store) = g.identity.store() {
                g.audit.drain_outbox(store.as_ref()).await;
            }
            if purge.elapsed() >= PURGE_EVERY {
                purge = std::time::Instant::now();
                g.consents.purge().await;
            }
        }
    });
}
