//! Prometheus metrics at `/metrics`: requests by method, server, tool and outcome; latency
//! histograms; live sessions; upstream links and health.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::upstream::PoolStats;

/// How many [`warden_mcp::Method`]s there are (`Other` is the last).
const METHODS: usize = warden_mcp::Method::Other as usize + 1;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub server: String,
    pub tool: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub server: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// `requests`' counters by their labels, each looked up in the family once: the family
    /// hashes the labels with SipHash on every lookup (about 650 instructions a call), this
    /// map with foldhash. Its keys are as bounded as the family's (a call's server and tool
    /// are labels only once an upstream has listed them).
    request_counters: std::sync::RwLock<foldhash::HashMap<RequestLabels, Counter>>,
    latency: Family<MethodLabels, Histogram>,
    /// Each method's latency histogram, looked up in `latency` once (see `decisions`).
    latency_of: [std::sync::OnceLock<Histogram>; METHODS],
    pub rejected: Family<MethodLabels, Counter>,
    sessions: Gauge,
    /// Calls between the start of their lifetime and its end, held ones included.
    pub calls_in_flight: Gauge,
    links: Family<ServerLabels, Gauge>,
    up: Family<ServerLabels, Gauge>,
    reloads: Family<OutcomeLabels, Counter>,
    /// `policy_decisions` for allow, deny and consent, looked up once: one is counted on every
    /// call, and a family finds its counter by hashing the labels.
    decisions: [Counter; 3],
    dlp: Family<DlpLabels, Counter>,
    integrity: Family<OutcomeLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DlpLabels {
    pub direction: &'static str,
    pub detector: String,
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Counts the audit trail's records in `/metrics`.
    pub fn register_audit(&mut self, audit: &crate::audit::Audit) {
        self.registry.register(
            "audit_records",
            "Audit records made durable",
            audit.written.clone(),
        );
        self.registry.register(
            "audit_missed",
            "Audit records that could not be written and were let go (audit.on_failure = \"open\")",
            audit.missed.clone(),
        );
    }

    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("warden");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
        });
        let rejected = Family::<MethodLabels, Counter>::default();
        let sessions = Gauge::default();
        let links = Family::<ServerLabels, Gauge>::default();
        let up = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "requests",
            "MCP requests answered, by method, server, tool and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its reply (first byte for streams)",
            latency.clone(),
        );
        registry.register(
            "rejected",
            "Requests refused at the edge or by the protocol checks, by reason",
            rejected.clone(),
        );
        registry.register("sessions", "Live legacy-era sessions", sessions.clone());
        let calls_in_flight = Gauge::default();
        registry.register(
            "calls_in_flight",
            "Calls received and not yet ended (answered, cancelled or left by their client), calls held for consent included",
            calls_in_flight.clone(),
        );
        registry.register(
            "upstream_links",
            "Live links to each upstream (child processes or upstream sessions)",
            links.clone(),
        );
        registry.register(
            "upstream_up",
            "1 when the last attempt to open the upstream worked, 0 when it failed",
            up.clone(),
        );
        let reloads = Family::<OutcomeLabels, Counter>::default();
        let decisions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads: loaded, or refused (the previous policies keep serving)",
            reloads.clone(),
        );
        registry.register(
            "policy_decisions",
            "Policy decisions on calls, by outcome: allow, deny, consent",
            decisions.clone(),
        );
        let dlp = Family::<DlpLabels, Counter>::default();
        registry.register(
            "dlp_findings",
            "Personal data and secrets found by DLP, by direction, detector and action taken",
            dlp.clone(),
        );
        let integrity = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tool_integrity",
            "Tool definitions checked against their pins: withheld (changed, new under operator approval, or poisoned), flagged, pinned",
            integrity.clone(),
        );
        Metrics {
            dlp,
            integrity,
            registry,
            requests,
            request_counters: Default::default(),
            latency,
            latency_of: Default::default(),
            rejected,
            sessions,
            calls_in_flight,
            links,
            up,
            reloads,
            decisions: ["allow", "deny", "consent"]
                .map(|outcome| decisions.get_or_create(&OutcomeLabels { outcome }).clone()),
        }
    }

    /// Counts one answered request.
    pub fn count_request(&self, labels: RequestLabels) {
        use std::sync::PoisonError;
        {
            let known = self.request_counters.read();
            if let Some(counter) = known.unwrap_or_else(PoisonError::into_inner).get(&labels) {
                counter.inc();
                return;
            }
        }
        let counter = self.requests.get_or_create(&labels).clone();
        counter.inc();
        self.request_counters
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(labels, counter);
    }

    /// Observes how long a call of `method` took.
    pub fn observe_latency(&self, method: warden_mcp::Method, elapsed: std::time::Duration) {
        self.latency_of[method as usize]
            .get_or_init(|| {
                let method = method.as_str().to_string();
                self.latency.get_or_create(&MethodLabels { method }).clone()
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&MethodLabels {
                method: reason.to_string(),
            })
            .inc();
    }

    pub fn policy_reload(&self, outcome: &crate::policy::Reload) {
        let outcome = match outcome {
            crate::policy::Reload::Unchanged => return,
            crate::policy::Reload::Loaded(_) => "loaded",
            crate::policy::Reload::Refused(_) => "refused",
        };
        self.reloads.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn decision(&self, outcome: &warden_policy::Outcome) {
        let i = match outcome {
            warden_policy::Outcome::Allow => 0,
            warden_policy::Outcome::Deny => 1,
            warden_policy::Outcome::Consent(_) => 2,
        };
        self.decisions[i].inc();
    }

    /// Counts findings, one counter update per detector and action.
    pub fn dlp_findings(&self, found: &[crate::dlp::Found]) {
        let mut counted: Vec<(&crate::dlp::Found, u64)> = Vec::new();
        for f in found {
            match counted
                .iter_mut()
                .find(|(c, _)| c.detector == f.detector && c.action == f.action)
            {
                Some((_, n)) => *n += 1,
                None => counted.push((f, 1)),
            }
        }
        for (f, n) in counted {
            self.dlp
                .get_or_create(&DlpLabels {
                    direction: f.direction.as_str(),
                    detector: f.detector.clone(),
                    action: crate::dlp::action_name(f.action),
                })
                .inc_by(n);
        }
    }

    pub fn tool_integrity(&self, outcome: &'static str) {
        self.integrity
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The text exposition, with gauges read at scrape time.
    pub fn render(&self, sessions: usize, pool: &PoolStats) -> String {
        self.sessions
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        for (server, live, failing) in &pool.upstreams {
            let labels = ServerLabels {
                server: server.clone(),
            };
            self.links
                .get_or_create(&labels)
                .set(i64::try_from(*live).unwrap_or(i64::MAX));
            self.up.get_or_create(&labels).set(i64::from(!failing));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(tool: &str, outcome: &'static str) -> RequestLabels {
        RequestLabels {
            method: "tools/call",
            server: "fx".into(),
            tool: tool.into(),
            outcome,
        }
    }

    #[test]
    fn requests_are_counted_per_labels_whether_their_counter_was_looked_up_before_or_not() {
        let m = Metrics::new();
        m.count_request(labels("echo", "ok"));
        m.count_request(labels("echo", "ok"));
        m.count_request(labels("echo", "tool_error"));
        m.count_request(labels("add", "ok"));
        let text = m.render(0, &PoolStats { upstreams: vec![] });
        let count = |tool: &str, outcome: &str| {
            let want = format!(
                "warden_requests_total{{method=\"tools/call\",server=\"fx\",tool=\"{tool}\",outcome=\"{outcome}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&want))
                .unwrap_or_else(|| panic!("no line {want} in\n{text}"))
                .to_string()
        };
        assert_eq!(count("echo", "ok"), "2");
        assert_eq!(count("echo", "tool_error"), "1");
        assert_eq!(count("add", "ok"), "1");
    }
}
