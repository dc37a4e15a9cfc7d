//! Consent: a call that policy allows only once a person approves it waits here for that
//! person, and goes on as the same call when they do.
//!
//! - A **consent request** ([`ConsentRequest`], in the store) holds who called, through which
//!   agent, what (server, tool, the exact arguments in [`canonical`] form and their digest),
//!   which policies asked, who may approve, and until when. Its id is the secret part of the
//!   consent page's link, single use: once decided, the link shows the decision only.
//! - A **grant** is what an approval makes: one call with exactly these arguments (consumed
//!   atomically by the call that uses it), or this tool for a while. [`Consents::covered`]
//!   checks both next to the policy decision; standing grants are cached in memory and reloaded
//!   when the store's generation changes, so a covered call costs no store round trip.
//! - A call **waits** for the decision ([`Consents::wait`]) at most `consent.hold` per request
//!   of the client; decisions made on this gateway wake waiters at once, decisions made
//!   elsewhere (another gateway on the same PostgreSQL) within a second.
//! - **Bounds:** pending requests per user (`consent.max_pending_per_user`) and held calls
//!   (`consent.max_held`); over them, a clear refusal. Identical calls of one caller share one
//!   pending request, so an agent that retries does not fill the page with copies.
//!
//! How each kind of client is asked is the consent stage's ([`crate::stage::consent`]); the
//! page is [`page`].

mod audit;
pub mod canonical;
pub mod page;
pub mod seal;
mod signin;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::watch;
use warden_policy::ConsentRule;

use crate::config::{Config, ConsentConfig};
use crate::identity::Principal;
use crate::store::{
    ConsentAnswer, ConsentRequest, ConsentState, ConsumeOutcome, DecideOutcome, Generation, Grant,
    GrantKind, Store, StoreError,
};

pub(crate) use seal::write_private;
pub use seal::{Sealer, State};
pub(crate) use signin::{CodeRequest, keep, state_matches};

/// A random id: 128 bits, base64url.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // aws-lc's generator fails only if the OS has no randomness, where nothing works anyway.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Unix seconds, which tests may move forward (no sleeping to see a grant expire).
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        crate::store::now() + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this gateway's clock forward (tests only: grants and requests expire by it).
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// What a call that needs consent asks for.
pub struct Ask<'a> {
    pub principal: &'a Principal,
    pub server: &'a str,
    /// `server.tool`.
    pub tool: &'a str,
    pub method: &'a str,
    pub canonical: String,
    pub digest: String,
    pub rule: ConsentRule,
    pub policies: &'a [String],
    pub approvers: &'a [String],
}

/// How a wait for a decision ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Approved,
    Denied {
        by: String,
    },
    Expired,
    /// Still undecided when the wait's limit passed.
    Pending,
    Gone,
}

/// Whose grant for what: (user, agent, tool).
type Caller = (String, Option<String>, String);

/// The key of `p`'s grants for `tool`.
fn caller(p: &Principal, tool: &str) -> Caller {
    (
        p.user.to_string(),
        p.agent.as_deref().map(str::to_string),
        tool.to_string(),
    )
}

/// Standing grants by caller (the longest: expiry and id), and one-call grants by caller and
/// argument digest (ids and expiries), as of one store generation.
#[derive(Default)]
struct GrantCache {
    generation: Option<Generation>,
    standing: HashMap<Caller, (i64, String)>,
    one_call: HashMap<(Caller, String), Vec<(String, i64)>>,
}

pub struct Consents {
    config: ConsentConfig,
    /// Scheme, host and port of the public URL: links are `{origin}/consent/{id}`.
    origin: String,
    store: Option<Arc<dyn Store>>,
    sealer: Option<Sealer>,
    pub clock: Clock,
    grants: RwLock<GrantCache>,
    /// Waiters of decisions made on this gateway, by consent id.
    decided: Mutex<HashMap<String, watch::Sender<u64>>>,
    held: Arc<AtomicUsize>,
    pub(crate) signin: Option<signin::SignIn>,
    /// Requests asked and decided, and grants used, are recorded.
    audit: Arc<crate::audit::Audit>,
}

/// Counts a held call while it lives.
pub struct HeldSlot(Arc<AtomicUsize>);

impl Drop for HeldSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.trim_end_matches('/').to_string(),
    }
}

impl Consents {
    pub fn new(
        config: &Config,
        store: Option<Arc<dyn Store>>,
        http: crate::outbound::Outbound,
        audit: Arc<crate::audit::Audit>,
    ) -> Consents {
        let sealer = match Sealer::in_dir(&config.storage.dir) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot read or make the consent state key; 2026-07-28 clients cannot be asked for consent");
                None
            }
        };
        let origin = origin_of(&config.server.public_url);
        let signin = config
            .consent
            .sign_in
            .as_ref()
            .map(|s| signin::SignIn::new(s.clone(), &config.identity, &origin, http));
        Consents {
            config: config.consent.clone(),
            origin,
            store,
            sealer,
            clock: Clock::default(),
            grants: RwLock::new(GrantCache::default()),
            decided: Mutex::new(HashMap::new()),
            held: Arc::new(AtomicUsize::new(0)),
            signin,
            audit,
        }
    }

    pub fn config(&self) -> &ConsentConfig {
        &self.config
    }

    /// Why consent cannot be asked for here, if it cannot.
    pub fn unavailable(&self) -> Option<&'static str> {
        if self.signin.is_none() {
            Some("no consent page is configured ([consent] client_id and client_secret)")
        } else if self.store.is_none() {
            Some("the store is not open")
        } else {
            None
        }
    }

    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_ref()
    }

    fn store(&self) -> Result<&Arc<dyn Store>, StoreError> {
        self.store.as_ref().ok_or(StoreError::Corrupt {
            what: "consent",
            reason: "no store".into(),
        })
    }

    /// The consent page of a request.
    pub fn link(&self, id: &str) -> String {
        format!("{}/consent/{id}", self.origin)
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A slot for one more held call, if the bound allows it.
    pub fn hold_slot(&self) -> Option<HeldSlot> {
        let before = self.held.fetch_add(1, Ordering::Relaxed);
        let slot = HeldSlot(self.held.clone());
        (before < self.config.max_held).then_some(slot)
    }

    /// Reloads the grant cache if the store changed since it was read.
    async fn refresh(&self, store: &Arc<dyn Store>) -> Result<(), StoreError> {
        let generation = store.generation().await?;
        if self
            .grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
            == Some(generation)
        {
            return Ok(());
        }
        let now = self.clock.now();
        let live = store.grants(None, now).await?;
        let mut cache = GrantCache {
            generation: Some(generation),
            ..GrantCache::default()
        };
        for g in live {
            match g.kind {
                GrantKind::Standing => {
                    let key = (g.user, g.agent, g.tool);
                    let longest = cache
                        .standing
                        .entry(key)
                        .or_insert((g.expires_at, g.id.clone()));
                    if g.expires_at > longest.0 {
                        *longest = (g.expires_at, g.id);
                    }
                }
                GrantKind::OneCall { arguments_digest } => cache
                    .one_call
                    .entry(((g.user, g.agent, g.tool), arguments_digest))
                    .or_default()
                    .push((g.id, g.expires_at)),
            }
        }
        *self.grants.write().unwrap_or_else(|e| e.into_inner()) = cache;
        Ok(())
    }

    /// The grant that lets this call through without asking, if there is one: a standing grant
    /// of the caller for the tool, or a one-call grant for exactly these arguments, which this
    /// call then uses up (of two concurrent calls, only one can).
    pub async fn covered(
        &self,
        p: &Principal,
        tool: &str,
        digest: &str,
    ) -> Result<Option<String>, StoreError> {
        match self.standing(p, tool).await? {
            Some(grant) => Ok(Some(grant)),
            None => self.one_call(p, tool, digest).await,
        }
    }

    /// The caller's standing grant for the tool, if one is live: it covers any arguments, so
    /// it can be looked up before they are put in canonical form.
    pub async fn standing(&self, p: &Principal, tool: &str) -> Result<Option<String>, StoreError> {
        let store = self.store()?;
        self.refresh(store).await?;
        let now = self.clock.now();
        let cache = self.grants.read().unwrap_or_else(|e| e.into_inner());
        // A standing grant's use is in the call's own request record (its decision names the
        // grant): no record of its own on every call.
        Ok(cache
            .standing
            .get(&caller(p, tool))
            .filter(|(until, _)| *until > now)
            .map(|(_, id)| id.clone()))
    }

    /// A live one-call grant of the caller for exactly these arguments, used up by this call
    /// (of two concurrent calls, only one can).
    pub async fn one_call(
        &self,
        p: &Principal,
        tool: &str,
        digest: &str,
    ) -> Result<Option<String>, StoreError> {
        let store = self.store()?;
        self.refresh(store).await?;
        let now = self.clock.now();
        let candidates = {
            let cache = self.grants.read().unwrap_or_else(|e| e.into_inner());
            cache
                .one_call
                .get(&(caller(p, tool), digest.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        for (id, expires_at) in candidates {
            if expires_at <= now {
                continue;
            }
            if store.consume_grant(&id, now).await? == ConsumeOutcome::Consumed {
                tracing::info!(grant = %id, user = %p.user, tool, "one-call grant used");
                self.audit
                    .write_later(audit::grant_used(p, tool, &id, "one_call"));
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The pending request for this call: an identical one of the same caller if there is one,
    /// otherwise a new one (within the caller's bound).
    pub async fn ask(&self, ask: &Ask<'_>) -> Result<ConsentRequest, AskError> {
        let store = self.store()?;
        let now = self.clock.now();
        let p = ask.principal;
        let agent = p.agent.as_deref().map(str::to_string);
        let pending = store.pending_consents(&p.user, now).await?;
        if let Some(same) = pending.iter().find(|c| {
            c.agent == agent
                && c.method == ask.method
                && c.tool == ask.tool
                && c.arguments_digest == ask.digest
        }) {
            return Ok(same.clone());
        }
        if pending.len() >= self.config.max_pending_per_user {
            return Err(AskError::TooMany(pending.len()));
        }
        let ttl = i64::try_from(self.config.ttl.as_secs()).unwrap_or(600);
        let request = ConsentRequest {
            id: random_id(),
            user: p.user.to_string(),
            agent,
            server: ask.server.to_string(),
            tool: ask.tool.to_string(),
            method: ask.method.to_string(),
            arguments: ask.canonical.clone(),
            arguments_digest: ask.digest.clone(),
            policies: ask.policies.to_vec(),
            max_seconds: match ask.rule {
                ConsentRule::Once => None,
                ConsentRule::For(d) => Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            },
            approvers: ask.approvers.to_vec(),
            created_at: now,
            expires_at: now + ttl,
            state: ConsentState::Pending,
            decided_by: None,
            decided_at: None,
            grant_id: None,
        };
        store.insert_consent(&request).await?;
        self.audit.write_later(audit::asked(&request));
        tracing::info!(
            event = "consent.asked",
            consent = %request.id,
            user = %request.user,
            agent = ?request.agent,
            tool = %request.tool,
            arguments_digest = %request.arguments_digest,
            policies = ?request.policies,
            approvers = ?request.approvers,
            expires_at = request.expires_at,
            "consent asked"
        );
        Ok(request)
    }

    pub async fn request(&self, id: &str) -> Result<Option<ConsentRequest>, StoreError> {
        self.store()?.consent(id).await
    }

    /// Waits at most `limit` for request `id` to be decided.
    pub async fn wait(&self, id: &str, limit: Duration) -> Result<Waited, StoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut woken = self.watch(id);
        loop {
            let Some(c) = self.request(id).await? else {
                return Ok(Waited::Gone);
            };
            match c.state {
                ConsentState::Approved => return Ok(Waited::Approved),
                ConsentState::Denied => {
                    return Ok(Waited::Denied {
                        by: c.decided_by.unwrap_or_default(),
                    });
                }
                ConsentState::Pending if c.expires_at <= self.clock.now() => {
                    return Ok(Waited::Expired);
                }
                ConsentState::Pending => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Waited::Pending);
            }
            // Decisions here wake at once; decisions of another gateway show within a second.
            let nap = (deadline - now).min(Duration::from_secs(1));
            let _ = tokio::time::timeout(nap, woken.changed()).await;
        }
    }

    fn watch(&self, id: &str) -> watch::Receiver<u64> {
        let mut map = self.decided.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(id.to_string())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Records a person's answer to request `id` (the page has checked who they are and that
    /// they may decide). An approval makes its grant in the same transaction.
    pub async fn decide(
        &self,
        request: &ConsentRequest,
        by: &str,
        answer: Decision,
    ) -> Result<DecideOutcome, StoreError> {
        let store = self.store()?;
        let now = self.clock.now();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let grant = |kind, lasts: Duration| {
            ConsentAnswer::Approve(Grant {
                id: random_id(),
                user: request.user.clone(),
                agent: request.agent.clone(),
                tool: request.tool.clone(),
                kind,
                created_at: now,
                expires_at: now.saturating_add(secs(lasts)),
                consumed_at: None,
            })
        };
        let answer = match answer {
            Decision::Deny => ConsentAnswer::Deny,
            Decision::Connected => ConsentAnswer::Connected {
                connection: crate::connections::secret_name(&request.server),
            },
            // The held call uses it at once; a client that retries has the request's ttl.
            Decision::Once => grant(
                GrantKind::OneCall {
                    arguments_digest: request.arguments_digest.clone(),
                },
                self.config.ttl,
            ),
            Decision::For(d) => grant(GrantKind::Standing, d),
        };
        let outcome = store.decide_consent(&request.id, &answer, by, now).await?;
        if outcome == DecideOutcome::Decided {
            // The person's page answers once the decision is on the record.
            if let Err(r) = self.audit.write(audit::decided(request, by, &answer)).await {
                tracing::error!(consent = %request.id, reason = %r, "consent decision not recorded");
            }
            let (decision, grant) = match &answer {
                ConsentAnswer::Approve(g) => ("approved", Some(g)),
                ConsentAnswer::Connected { .. } => ("connected", None),
                ConsentAnswer::Deny => ("denied", None),
            };
            tracing::info!(
                event = "consent.decided",
                consent = %request.id,
                decision,
                by,
                user = %request.user,
                agent = ?request.agent,
                tool = %request.tool,
                grant = ?grant.map(|g| &g.id),
                grant_kind = ?grant.map(|g| match g.kind { GrantKind::Standing => "standing", GrantKind::OneCall { .. } => "one_call" }),
                grant_expires_at = ?grant.map(|g| g.expires_at),
                "consent decided"
            );
            if let Some(tx) = self
                .decided
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&request.id)
            {
                tx.send_modify(|n| *n += 1);
            }
        }
        Ok(outcome)
    }

    /// Deletes grants and requests that ended more than a day ago.
    pub async fn purge(&self) {
        let Ok(store) = self.store() else { return };
        match store.purge_ended(self.clock.now() - 86_400).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "ended grants and consent requests deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete ended grants"),
        }
    }
}

/// What the person chose on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Once,
    For(Duration),
    /// A request to connect an account: the account is connected.
    Connected,
    Deny,
}

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error(
        "{0} requests for consent are already waiting for this user; decide or let them expire first"
    )]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}
