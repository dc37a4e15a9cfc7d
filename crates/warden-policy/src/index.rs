//! The policy index: which policies can apply to a request, found without looking at the others.
//!
//! A policy's scope names at most one resource entity (`resource == Tool::"s.t"`,
//! `resource in Server::"s"`, `resource is Tool in Server::"s"`) and a set of actions. A request's
//! resource can only match a scope entity that is the resource itself or its server, because
//! Warden's only hierarchy is "a tool, prompt or resource is in its server". So the policies are
//! filed by (scope entity, action), and a decision evaluates three short lists:
//!
//! - the unscoped policies (`resource`, `resource is T`) for the action,
//! - the policies scoped to the request's server, for the action,
//! - the policies scoped to the request's tool, prompt or resource, for the action.
//!
//! Policies whose action scope is `action` or `action in [...]` are filed under every action
//! they name. Each policy is in exactly one scope, so the lists never overlap.

use foldhash::HashMap;

use cedar_policy::{ActionConstraint, Policy, ResourceConstraint};

use crate::reads::Reads;
use crate::request::{Action, Kind};

const ACTIONS: usize = Action::ALL.len();

/// Positions of policies (in load order) and what they read together.
#[derive(Default)]
struct Bucket {
    positions: Vec<u32>,
    reads: Reads,
}

/// One bucket per action.
#[derive(Default)]
struct Lists([Bucket; ACTIONS]);

/// The candidates for one request: up to three lists, and what each list reads.
pub(crate) struct Candidates<'s> {
    pub lists: [&'s [u32]; 3],
    pub reads: [&'s Reads; 3],
}

impl Candidates<'_> {
    pub fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.lists
            .iter()
            .flat_map(|l| l.iter().map(|&p| p as usize))
    }
}

#[derive(Default)]
pub(crate) struct Index {
    unscoped: Lists,
    /// Per resource kind (`Kind as usize`), per entity id.
    scoped: [HashMap<String, Lists>; 4],
}

impl Index {
    /// Files `policies`; `reads[i]` is what policy `i` reads.
    pub fn build(policies: &[Policy], reads: &[Reads]) -> Index {
        let mut index = Index::default();
        for (position, (policy, policy_reads)) in policies.iter().zip(reads).enumerate() {
            let lists = match scope_of(policy) {
                None => &mut index.unscoped,
                Some((kind, id)) => index.scoped[kind as usize].entry(id).or_default(),
            };
            for slot in action_slots(policy) {
                let bucket = &mut lists.0[slot];
                // More than u32::MAX policies would not load in memory anyway.
                bucket.positions.push(position as u32);
                bucket.reads.add(policy_reads);
            }
        }
        index
    }

    /// The policies to evaluate for `action` on the resource `kind`/`resource_id` in `server`,
    /// in load order within each of the three lists.
    pub fn candidates<'s>(
        &'s self,
        action: Action,
        server: &str,
        kind: Kind,
        resource_id: &str,
    ) -> Candidates<'s> {
        static NOTHING: Bucket = Bucket {
            positions: Vec::new(),
            reads: Reads::NONE,
        };
        let slot = action.slot();
        let at = |kind: Kind, id: &str| {
            self.scoped[kind as usize]
                .get(id)
                .map_or(&NOTHING, |l| &l.0[slot])
        };
        let server_bucket = at(Kind::Server, server);
        // For list actions the resource is the server itself: its list is already in.
        let own = if kind == Kind::Server {
            &NOTHING
        } else {
            at(kind, resource_id)
        };
        let unscoped = &self.unscoped.0[slot];
        Candidates {
            lists: [
                &unscoped.positions,
                &server_bucket.positions,
                &own.positions,
            ],
            reads: [&unscoped.reads, &server_bucket.reads, &own.reads],
        }
    }
}

/// The entity a policy's resource scope names, if it names one of Warden's types.
fn scope_of(policy: &Policy) -> Option<(Kind, String)> {
    let uid = match policy.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::Is(_) => return None,
        ResourceConstraint::Eq(uid)
        | ResourceConstraint::In(uid)
        | ResourceConstraint::IsIn(_, uid) => uid,
    };
    // Validation admits only the schema's types; anything else stays unscoped, which is always
    // sound (an unscoped policy is evaluated for every request).
    let kind = Kind::from_type_name(&uid.type_name().to_string())?;
    Some((kind, uid.id().unescaped().to_owned()))
}

fn action_slots(policy: &Policy) -> Vec<usize> {
    let all = || (0..ACTIONS).collect();
    let named = |uids: Vec<cedar_policy::EntityUid>| -> Option<Vec<usize>> {
        uids.iter()
            .map(|uid| Action::from_cedar_name(uid.id().unescaped()).map(Action::slot))
            .collect()
    };
    match policy.action_constraint() {
        ActionConstraint::Any => all(),
        ActionConstraint::Eq(uid) => named(vec![uid]).unwrap_or_else(all),
        ActionConstraint::In(uids) => named(uids).unwrap_or_else(all),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::PolicyId;

    fn policy(text: &str) -> Policy {
        Policy::parse(Some(PolicyId::new("p")), text).unwrap()
    }

    #[test]
    fn files_policies_by_resource_and_action() {
        let policies = [
            policy("permit(principal, action, resource);"),
            policy(r#"permit(principal, action == Action::"call_tool", resource == Tool::"s.t");"#),
            policy(r#"permit(principal, action == Action::"call_tool", resource == Tool::"s.u");"#),
            policy(r#"forbid(principal, action, resource in Server::"s");"#),
            policy(
                r#"permit(principal, action in [Action::"list_tools", Action::"list_prompts"], resource);"#,
            ),
        ];
        let reads: Vec<Reads> = policies.iter().map(Reads::of).collect();
        let index = Index::build(&policies, &reads);
        let found = |action, server, kind, id| -> Vec<usize> {
            let mut v: Vec<usize> = index
                .candidates(action, server, kind, id)
                .positions()
                .collect();
            v.sort();
            v
        };
        assert_eq!(found(Action::CallTool, "s", Kind::Tool, "s.t"), [0, 1, 3]);
        assert_eq!(found(Action::CallTool, "x", Kind::Tool, "x.t"), [0]);
        assert_eq!(found(Action::ListTools, "s", Kind::Server, "s"), [0, 3, 4]);
        assert_eq!(found(Action::GetPrompt, "s", Kind::Prompt, "s.t"), [0, 3]);
    }
}
