//! The policy engine: a checked, indexed policy set that decides requests.

use std::path::Path;

use std::collections::HashMap;

use cedar_policy::{AuthorizationError, Authorizer, Policy, PolicySet};
use cedar_policy_core::ast;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

use crate::build::Builder;
use crate::decision::Decision;
use crate::error::{PolicyError, PolicyErrors};
use crate::index::Index;
use crate::lint::{LintFinding, ToolInfo, lint};
use crate::load::{self, PolicyMeta};
use crate::reads::{Fields, Reads, Wanted};
use crate::request::Request;
use crate::schema::SCHEMA_TEXT;
use crate::scope::Compiled;
use crate::visibility::Outcomes;

/// A loaded policy set. Immutable: build a new one to reload, and share it in an `Arc`.
pub struct PolicyEngine {
    policies: Vec<Policy>,
    metas: Vec<PolicyMeta>,
    warnings: Vec<(usize, String)>,
    /// Each policy's scope check and condition, built once ([`crate::scope`]).
    compiled: Vec<Compiled>,
    /// Every policy in one Cedar set, and id → position: the reference that
    /// [`PolicyEngine::decide_unindexed`] evaluates with Cedar's own authorizer.
    all: PolicySet,
    positions: HashMap<String, usize>,
    index: Index,
    /// What all policies read together, for [`PolicyEngine::decide_unindexed`].
    all_reads: Reads,
    builder: Builder,
    /// Whether any policy is a data rule.
    data_rules: bool,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.policies.len())
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Loads every `*.cedar` file directly in `dir` (sorted by name; each file is named
    /// `dir/name` in ids and errors) and validates it against the schema. This is the crate's
    /// only I/O.
    pub fn load_dir(dir: &Path) -> Result<PolicyEngine, PolicyErrors> {
        PolicyEngine::from_sources(&load::read_dir(dir)?)
    }

    /// Builds an engine from `(file name, text)` pairs, reporting every parse, annotation and
    /// schema error with its file, line and column.
    pub fn from_sources(files: &[(String, String)]) -> Result<PolicyEngine, PolicyErrors> {
        let checked = load::check(files)?;
        let internal = |message: String| {
            PolicyErrors(vec![PolicyError {
                file: "<warden-policy>".into(),
                line: 0,
                column: 0,
                message,
            }])
        };
        let mut policies = Vec::with_capacity(checked.policies.len());
        let mut metas = Vec::with_capacity(checked.policies.len());
        let mut reads = Vec::with_capacity(checked.policies.len());
        for loaded in checked.policies {
            policies.push(loaded.policy);
            metas.push(loaded.meta);
            reads.push(loaded.reads);
        }
        let index = Index::build(&policies, &reads);
        let mut all_reads = Reads::default();
        reads.iter().for_each(|r| all_reads.add(r));
        let compiled = policies.iter().map(Compiled::new).collect();
        let all = PolicySet::from_policies(policies.iter().cloned())
            .map_err(|e| internal(e.to_string()))?;
        let positions = metas
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        let builder = Builder::new().map_err(internal)?;
        let data_rules = metas.iter().any(|m| m.data.is_some());
        Ok(PolicyEngine {
            data_rules,
            all_reads,
            compiled,
            all,
            positions,
            policies,
            metas,
            warnings: checked.warnings,
            index,
            builder,
        })
    }

    /// Decides a request: never panics, and denies whatever it cannot evaluate.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let kind = request.action.resource_kind();
        let resource_id = kind.resource_id(request.server, request.target);
        let candidates = self
            .index
            .candidates(request.action, request.server, kind, &resource_id);
        let mut satisfied = Vec::new();
        let mut conditional = Vec::new();
        for i in candidates.positions() {
            let compiled = &self.compiled[i];
            if let Some(scope) = &compiled.scope
                && !scope.admits(request.user, request.groups, kind)
            {
                continue;
            }
            match &compiled.condition {
                None => satisfied.push(i),
                Some(condition) => conditional.push((i, condition)),
            }
        }
        let mut errored = Vec::new();
        // Cedar's request and entities are built only for policies with conditions: a decision
        // that scopes alone settle needs neither.
        if !conditional.is_empty() {
            let call = match self
                .builder
                .build(request, &resource_id, Wanted(&candidates.reads))
            {
                Ok(call) => call,
                Err(message) => return Decision::invalid(message),
            };
            let evaluator =
                Evaluator::new(call.request, &call.entities, Extensions::all_available());
            // Static policies have no slots.
            let slots = ast::SlotEnv::new();
            for (i, condition) in conditional {
                match evaluator.interpret(condition, &slots) {
                    Ok(v) => match v.value_kind() {
                        ast::ValueKind::Lit(ast::Literal::Bool(true)) => satisfied.push(i),
                        ast::ValueKind::Lit(ast::Literal::Bool(false)) => {}
                        // Conditions are booleans; validation makes this unreachable.
                        other => {
                            errored.push((i, format!("condition is not a boolean: {other}")));
                        }
                    },
                    Err(e) => errored.push((i, e.to_string())),
                }
            }
            satisfied.sort_unstable();
        }
        Decision::combine(&self.metas, satisfied, errored)
    }

    /// Whether the item a request names belongs in this caller's list (`tools/list`,
    /// `prompts/list`, `resources/list`): whether, for **some** arguments, [`decide`] would
    /// allow it or ask for consent. The request's `arguments` are ignored; everything else
    /// (user, groups, agent, scopes, tags, time, client address, era) counts as for a call.
    ///
    /// The parts of each condition that read `context.arguments` or
    /// `context.decimal_arguments` are taken as unknown (module `visibility`), the `&&`, `||`,
    /// `!` and `if` around them kept:
    ///
    /// - the item is visible when a permit (with or without `@consent`) admits the caller and
    ///   its condition can be true for some arguments — `principal in Group::"finance" &&
    ///   context.arguments has amount && …` shows the tool to finance, and to nobody else;
    /// - unless a forbid admits the caller and matches (or fails) whatever the arguments — a
    ///   forbid on a named agent hides the tool from that agent; a forbid that depends on the
    ///   arguments (an amount limit) hides nothing, and decides the call itself.
    ///
    /// So an item that some arguments make callable is always listed, and an item no permit's
    /// argument-free part admits never is. Costs about what a decision does.
    ///
    /// [`decide`]: PolicyEngine::decide
    pub fn visible(&self, request: &Request<'_>) -> bool {
        // The arguments are unknown: none is copied into the context.
        let request = Request {
            arguments: None,
            ..request.clone()
        };
        let kind = request.action.resource_kind();
        let resource_id = kind.resource_id(request.server, request.target);
        let candidates = self
            .index
            .candidates(request.action, request.server, kind, &resource_id);
        let Ok(call) = self
            .builder
            .build(&request, &resource_id, Wanted(&candidates.reads))
        else {
            return false;
        };
        let evaluator = Evaluator::new(call.request, &call.entities, Extensions::all_available());
        let slots = ast::SlotEnv::new();
        let mut permitted = false;
        for i in candidates.positions() {
            let forbid = self.metas[i].forbid;
            // A data rule grants nothing.
            if self.metas[i].data.is_some() {
                continue;
            }
            // Once a permit counts, only a forbid can change the answer.
            if permitted && !forbid {
                continue;
            }
            let compiled = &self.compiled[i];
            if let Some(scope) = &compiled.scope
                && !scope.admits(request.user, request.groups, kind)
            {
                continue;
            }
            let outcomes = match (&compiled.shape, &compiled.condition) {
                (Some(shape), _) => shape.outcomes(&evaluator, &slots),
                (None, Some(condition)) => Outcomes::of(evaluator.interpret(condition, &slots)),
                (None, None) => Outcomes::TRUE,
            };
            if forbid {
                if outcomes.always_denies() {
                    return false;
                }
            } else {
                permitted |= outcomes.may_match();
            }
        }
        permitted
    }

    /// Decides with Cedar's own authorizer over every policy, without the index and the
    /// compiled scopes: the reference that tests and the benchmark compare
    /// [`PolicyEngine::decide`] with. Not for the gateway.
    #[doc(hidden)]
    pub fn decide_unindexed(&self, request: &Request<'_>) -> Decision {
        let resource_id = request
            .action
            .resource_kind()
            .resource_id(request.server, request.target);
        let call = match self
            .builder
            .build(request, &resource_id, Wanted(&[&self.all_reads]))
        {
            Ok(call) => call,
            Err(message) => return Decision::invalid(message),
        };
        let response =
            Authorizer::new().is_authorized(&call.request.into(), &self.all, &call.entities.into());
        let position =
            |id: &cedar_policy::PolicyId| self.positions.get(AsRef::<str>::as_ref(id)).copied();
        let satisfied = response
            .diagnostics()
            .reason()
            .filter_map(position)
            .collect();
        let errored = response
            .diagnostics()
            .errors()
            .filter_map(|e| {
                let AuthorizationError::PolicyEvaluationError(e) = e;
                Some((position(e.policy_id())?, e.inner().to_string()))
            })
            .collect();
        Decision::combine(&self.metas, satisfied, errored)
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The ids of the policies, in load order.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.metas.iter().map(|m| m.id.as_str())
    }

    /// Whether any policy is a data rule (`@dlp_results`, `@dlp_arguments`).
    pub fn has_data_rules(&self) -> bool {
        self.data_rules
    }

    /// Whether any policy reads a call's arguments (`context.arguments` or
    /// `context.decimal_arguments`). When none does, a request's `arguments` are never read,
    /// and a caller may leave out what it would cost to have them at hand.
    pub fn reads_arguments(&self) -> bool {
        self.all_reads.arguments != Fields::None || self.all_reads.decimal_arguments != Fields::None
    }

    /// Checks that every detector the data rules name is one `known` accepts; each unknown one
    /// is an error at its policy's place.
    pub fn check_data_rules(&self, known: impl Fn(&str) -> bool) -> Result<(), PolicyErrors> {
        let mut errors = Vec::new();
        for m in &self.metas {
            let Some(rule) = &m.data else { continue };
            let named = [
                ("dlp_results", &rule.results),
                ("dlp_arguments", &rule.arguments),
            ];
            for (which, actions) in named {
                let Some(actions) = actions else { continue };
                for d in actions.detectors().filter(|d| !known(d)) {
                    errors.push(PolicyError {
                        file: m.file.clone(),
                        line: m.line,
                        column: m.column,
                        message: format!("@{which} names {d:?}, which is not a DLP detector"),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PolicyErrors(errors))
        }
    }

    /// The Cedar schema every policy is validated against.
    pub fn schema_text() -> &'static str {
        SCHEMA_TEXT
    }

    /// Findings about policies that load but name tools or servers no upstream offers, read
    /// arguments a tool does not declare, or draw a Cedar warning.
    pub fn lint(&self, tools: &[ToolInfo]) -> Vec<LintFinding> {
        lint(&self.policies, &self.metas, &self.warnings, tools)
    }
}
