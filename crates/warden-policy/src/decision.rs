//! Decisions: the three outcomes, the precedence that picks one, and the explanation.
//!
//! Precedence, from the top:
//!
//! 1. a matching `forbid` → **deny**, naming the forbids;
//! 2. a `forbid` whose condition could not be evaluated (e.g. an argument of the wrong type) →
//!    **deny** (fail closed: Cedar itself would skip such a policy);
//! 3. a matching `permit` without `@consent` → **allow**, naming those permits (a plain permit
//!    wins over a consent permit: the policy author already said yes);
//! 4. a matching `permit` with `@consent` → **consent**, with the strictest rule of those that
//!    match (`once` before any duration, a shorter duration before a longer one), naming them,
//!    strictest first;
//! 5. otherwise → **deny** by default, naming no policy.
//!
//! Evaluation errors of permits never allow anything; they are listed in [`Decision::errors`].

use std::fmt::Write as _;

use std::sync::Arc;

use crate::consent::ConsentRule;
use crate::data::DataRules;
use crate::load::PolicyMeta;

/// What the gateway does with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allow,
    Deny,
    /// Allowed once a user approves (unless a standing grant already covers the call: grants are
    /// checked by the gateway, next to the decision).
    Consent(ConsentRule),
}

impl Outcome {
    /// Allowed, or obtainable with consent: the call is not refused outright. To filter a list,
    /// use [`crate::PolicyEngine::visible`], which asks this for *some* arguments, not none.
    pub fn visible(&self) -> bool {
        !matches!(self, Outcome::Deny)
    }
}

/// Which rule of the precedence made the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A permit without `@consent` matched and no forbid did.
    Permitted,
    /// Only permits with `@consent` matched.
    ConsentRequired,
    /// A forbid matched.
    Forbidden,
    /// A forbid could not be evaluated; the request is denied rather than risk skipping it.
    ForbidFailed,
    /// No permit matched.
    NoPermit,
    /// The request itself could not be put to the policies (e.g. arguments nested too deep).
    InvalidRequest,
}

/// A decision and the policies that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    /// Ids of the determining policies (`@id`, or `file:line`), in the order the precedence
    /// names them; empty for a default deny.
    pub policies: Vec<String>,
    /// For consent: the groups that `@approvers` of the matching consent permits name, sorted
    /// and without repeats. When any is named, a member of one of them approves and the caller
    /// cannot approve their own call (the strictest policy wins, as for the rule).
    pub approvers: Vec<String>,
    /// Evaluation errors met on the way, as `policy id: message`.
    pub errors: Vec<String>,
    /// The data rules (`@dlp_results`, `@dlp_arguments`) that matched, whatever the outcome;
    /// one whose condition failed stands as `block` for everything it names.
    pub data: DataRules,
}

impl Decision {
    pub(crate) fn invalid(message: String) -> Decision {
        Decision {
            outcome: Outcome::Deny,
            reason: Reason::InvalidRequest,
            policies: Vec::new(),
            approvers: Vec::new(),
            errors: vec![message],
            data: DataRules::default(),
        }
    }

    /// Applies the precedence to the policies that matched (`satisfied`) and those that failed
    /// (`errored`, with their messages); both as positions into `metas`.
    pub(crate) fn combine(
        metas: &[PolicyMeta],
        mut satisfied: Vec<usize>,
        mut errored: Vec<(usize, String)>,
    ) -> Decision {
        satisfied.sort_unstable();
        errored.sort_unstable();
        // Data rules grant nothing: they leave the precedence below and only say what DLP does.
        let mut data = DataRules::default();
        for &i in &satisfied {
            if let Some(rule) = &metas[i].data {
                data.rules.push((metas[i].id.clone(), Arc::clone(rule)));
            }
        }
        for (i, _) in &errored {
            if let Some(rule) = &metas[*i].data {
                data.rules
                    .push((metas[*i].id.clone(), Arc::new(rule.in_doubt())));
            }
        }
        satisfied.retain(|&i| metas[i].data.is_none());
        let ids = |positions: &mut dyn Iterator<Item = usize>| -> Vec<String> {
            positions.map(|i| metas[i].id.clone()).collect()
        };
        let errors = errored
            .iter()
            .map(|(i, m)| format!("{}: {m}", metas[*i].id))
            .collect();
        let decided = |outcome, reason, policies| Decision {
            outcome,
            reason,
            policies,
            approvers: Vec::new(),
            errors,
            data,
        };

        let forbids: Vec<usize> = satisfied
            .iter()
            .copied()
            .filter(|&i| metas[i].forbid)
            .collect();
        if !forbids.is_empty() {
            return decided(
                Outcome::Deny,
                Reason::Forbidden,
                ids(&mut forbids.into_iter()),
            );
        }
        let failed: Vec<usize> = errored
            .iter()
            .map(|(i, _)| *i)
            .filter(|&i| metas[i].forbid)
            .collect();
        if !failed.is_empty() {
            return decided(
                Outcome::Deny,
                Reason::ForbidFailed,
                ids(&mut failed.into_iter()),
            );
        }
        let plain: Vec<usize> = satisfied
            .iter()
            .copied()
            .filter(|&i| metas[i].consent.is_none())
            .collect();
        if !plain.is_empty() {
            return decided(
                Outcome::Allow,
                Reason::Permitted,
                ids(&mut plain.into_iter()),
            );
        }
        let mut consent: Vec<(ConsentRule, usize)> = satisfied
            .iter()
            .filter_map(|&i| metas[i].consent.map(|rule| (rule, i)))
            .collect();
        // Stable: equally strict policies keep their load order.
        consent.sort_by(|a, b| a.0.strictness(&b.0));
        match consent.first() {
            Some(&(rule, _)) => {
                let mut approvers: Vec<String> = consent
                    .iter()
                    .filter_map(|&(_, i)| metas[i].approvers.clone())
                    .collect();
                approvers.sort();
                approvers.dedup();
                Decision {
                    approvers,
                    ..decided(
                        Outcome::Consent(rule),
                        Reason::ConsentRequired,
                        ids(&mut consent.into_iter().map(|(_, i)| i)),
                    )
                }
            }
            None => decided(Outcome::Deny, Reason::NoPermit, Vec::new()),
        }
    }

    /// A few lines for a person: the outcome, the rule that decided it, the policies, and any
    /// evaluation errors.
    pub fn explain(&self) -> String {
        let mut out = match self.outcome {
            Outcome::Allow => "ALLOW".to_owned(),
            Outcome::Deny => "DENY".to_owned(),
            Outcome::Consent(rule) => format!("CONSENT ({rule})"),
        };
        let named = self.policies.join(", ");
        let why = match self.reason {
            Reason::Permitted => format!("permitted by {named}"),
            Reason::ConsentRequired if self.approvers.is_empty() => {
                format!("permitted only after the user approves (consent), by {named}")
            }
            Reason::ConsentRequired => format!(
                "permitted only after a member of {} approves (four eyes: not the caller), by {named}",
                self.approvers.join(" or ")
            ),
            Reason::Forbidden => format!("forbidden by {named}; a forbid always wins"),
            Reason::ForbidFailed => format!(
                "forbid {named} could not be evaluated, so the request is denied (fail closed)"
            ),
            Reason::NoPermit => "no policy permits this request (default deny)".to_owned(),
            Reason::InvalidRequest => {
                "the request could not be evaluated against the policies".to_owned()
            }
        };
        let _ = write!(out, ": {why}");
        if !self.data.is_empty() {
            let rules: Vec<&str> = self.data.policies().collect();
            let _ = write!(out, "\n  data rules: {}", rules.join(", "));
        }
        for e in &self.errors {
            let _ = write!(out, "\n  error: {e}");
        }
        out
    }
}
