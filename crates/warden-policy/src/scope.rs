//! Each policy compiled for evaluation: its scope checked by Warden, its `when`/`unless` body
//! evaluated by Cedar.
//!
//! Cedar evaluates a policy as one expression, `principal-scope && action-scope &&
//! resource-scope && body`, and its authorizer rebuilds that expression for every request.
//! Warden builds it once, and does better for the scope: the index ([`crate::index`]) already
//! guarantees the action and the scope's resource entity, and the rest — the principal, a
//! resource type test — is a string comparison here. So Cedar evaluates only the body, and only
//! for policies whose scope admits the request. A scope this module does not fully understand
//! keeps Cedar's whole condition, which is always right.

use cedar_policy::{ActionConstraint, Policy, PrincipalConstraint, ResourceConstraint};
use cedar_policy_core::ast;

use crate::request::{Action, Kind};
use crate::visibility::Shape;

/// The principal part of a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Any,
    /// `principal == User::"u"` (or `in User::"u"`).
    User(String),
    /// `principal in Group::"g"`.
    Group(String),
}

/// What Warden checks of a scope before Cedar evaluates the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScopeCheck {
    principal: Principal,
    /// The resource's type: from `resource is T` (`… in …`), and from `resource == E` (the index
    /// guarantees the entity only up to "is E or in E").
    kind: Option<Kind>,
}

/// A policy ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// `None`: the condition includes the scope (Cedar checks everything).
    pub scope: Option<ScopeCheck>,
    /// `None`: the condition is `true` (a policy with no `when`/`unless`, scope checked here).
    pub condition: Option<ast::Expr>,
    /// The condition with the arguments unknown, for lists ([`crate::visibility`]); `None`
    /// when it reads no argument.
    pub shape: Option<Shape>,
}

impl Compiled {
    pub fn new(policy: &Policy) -> Compiled {
        let core: &ast::Policy = policy.as_ref();
        let (scope, condition) = match scope_check(policy) {
            Some(scope) => (Some(scope), core.non_scope_constraints().cloned()),
            None => (None, Some(core.condition())),
        };
        let shape = condition.as_ref().and_then(Shape::of);
        Compiled {
            scope,
            condition,
            shape,
        }
    }
}

impl ScopeCheck {
    /// Whether the scope admits a request by `user` in `groups` on a resource of type `kind`
    /// (the action and the resource entity are the index's part).
    pub fn admits(&self, user: &str, groups: &[&str], kind: Kind) -> bool {
        let principal = match &self.principal {
            Principal::Any => true,
            Principal::User(u) => u == user,
            Principal::Group(g) => groups.contains(&g.as_str()),
        };
        principal && self.kind.is_none_or(|k| k == kind)
    }
}

/// The scope as Warden can check it, or `None` if it names anything unexpected.
fn scope_check(policy: &Policy) -> Option<ScopeCheck> {
    let principal = match policy.principal_constraint() {
        PrincipalConstraint::Any => Principal::Any,
        PrincipalConstraint::Is(ty) => (ty.to_string() == "User").then_some(Principal::Any)?,
        PrincipalConstraint::Eq(uid) => match uid.type_name().to_string().as_str() {
            "User" => Principal::User(uid.id().unescaped().to_owned()),
            _ => return None,
        },
        PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid) => {
            if let PrincipalConstraint::IsIn(ty, _) = policy.principal_constraint()
                && ty.to_string() != "User"
            {
                return None;
            }
            match uid.type_name().to_string().as_str() {
                "User" => Principal::User(uid.id().unescaped().to_owned()),
                "Group" => Principal::Group(uid.id().unescaped().to_owned()),
                _ => return None,
            }
        }
    };
    let known = |uid: &cedar_policy::EntityUid| Kind::from_type_name(&uid.type_name().to_string());
    let kind = match policy.resource_constraint() {
        ResourceConstraint::Any => None,
        ResourceConstraint::Eq(uid) => Some(known(&uid)?),
        ResourceConstraint::In(uid) => {
            known(&uid)?;
            None
        }
        ResourceConstraint::Is(ty) => Some(Kind::from_type_name(&ty.to_string())?),
        ResourceConstraint::IsIn(ty, uid) => {
            known(&uid)?;
            Some(Kind::from_type_name(&ty.to_string())?)
        }
    };
    let action_known = |uid: &cedar_policy::EntityUid| {
        uid.type_name().to_string() == "Action"
            && Action::from_cedar_name(uid.id().unescaped()).is_some()
    };
    let actions_known = match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => action_known(&uid),
        ActionConstraint::In(uids) => uids.iter().all(action_known),
    };
    actions_known.then_some(ScopeCheck { principal, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::PolicyId;

    fn check(scope: &str) -> Option<ScopeCheck> {
        let text = format!("permit ({scope});");
        scope_check(&Policy::parse(Some(PolicyId::new("p")), text).unwrap())
    }

    #[test]
    fn understands_warden_scopes() {
        let c = check(r#"principal in Group::"eng", action == Action::"call_tool", resource is Tool in Server::"s""#)
            .unwrap();
        assert!(c.admits("alice", &["ops", "eng"], Kind::Tool));
        assert!(!c.admits("alice", &["ops"], Kind::Tool));
        assert!(!c.admits("alice", &["eng"], Kind::Prompt));
        let c = check(r#"principal == User::"bob", action, resource"#).unwrap();
        assert!(c.admits("bob", &[], Kind::Server));
        assert!(!c.admits("alice", &["bob"], Kind::Server));
        assert!(check("principal is User, action, resource").is_some());
        // The server bucket holds `resource == Server::"s"` too: only the server itself matches.
        let c = check(r#"principal, action, resource == Server::"s""#).unwrap();
        assert!(c.admits("a", &[], Kind::Server));
        assert!(!c.admits("a", &[], Kind::Tool));
        let c = check(r#"principal, action, resource in Server::"s""#).unwrap();
        assert!(c.admits("a", &[], Kind::Tool));
    }

    #[test]
    fn leaves_the_unexpected_to_cedar() {
        assert_eq!(check(r#"principal == Agent::"a", action, resource"#), None);
        assert_eq!(
            check(r#"principal, action == Action::"nope", resource"#),
            None
        );
        assert_eq!(check(r#"principal, action, resource == Widget::"w""#), None);
    }

    #[test]
    fn a_policy_without_conditions_needs_no_evaluation() {
        let p = Policy::parse(
            Some(PolicyId::new("p")),
            r#"permit (principal, action, resource is Tool);"#,
        )
        .unwrap();
        let c = Compiled::new(&p);
        assert!(c.scope.is_some() && c.condition.is_none());
        let p = Policy::parse(
            Some(PolicyId::new("p")),
            r#"permit (principal == Agent::"a", action, resource) when { true };"#,
        )
        .unwrap();
        let c = Compiled::new(&p);
        assert!(c.scope.is_none() && c.condition.is_some());
    }
}
