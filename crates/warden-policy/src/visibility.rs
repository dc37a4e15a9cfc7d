//! Whether an item stays in a list: its policies evaluated with the call's arguments unknown.
//!
//! A `tools/list` answer names tools, not calls: nobody has chosen the arguments yet. So a
//! policy's condition is split, once at load, into a [`Shape`]: its boolean skeleton (`&&`,
//! `||`, `!`, `if … then … else`) down to the parts that read `context.arguments` or
//! `context.decimal_arguments` — those become [`Shape::Unknown`], "any outcome" — while every
//! other part (principal, groups, agent, tags, time, era, client address) stays an expression
//! that Cedar evaluates as it would for the call. Evaluating a shape gives the set of outcomes
//! ([`Outcomes`]: true, false, error) the condition can have for *some* arguments:
//!
//! - a **permit** counts when `true` is among them (allow or consent is possible);
//! - a **forbid** hides the item only when `false` is not among them: for every argument it
//!   matches or fails, and a forbid that fails denies.
//!
//! The set is an over-approximation in one way only: two unknown parts are taken as
//! independent, so `context.arguments has a && !(context.arguments has a)` still counts as
//! possibly true. Never the other way: whatever decides a call with real arguments is inside the
//! set, so an item that some arguments make allowed (or consent) is always listed, and an item
//! that no permit's argument-free parts admit never is.

use cedar_policy_core::ast::{self, Expr, ExprKind, UnaryOp};
use cedar_policy_core::evaluator::Evaluator;

/// The outcomes a condition can have over all argument values: a set of true, false, error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcomes(u8);

impl Outcomes {
    pub const TRUE: Outcomes = Outcomes(1);
    pub const FALSE: Outcomes = Outcomes(2);
    pub const ERROR: Outcomes = Outcomes(4);
    const NONE: Outcomes = Outcomes(0);
    const ANY: Outcomes = Outcomes(7);

    fn has(self, other: Outcomes) -> bool {
        self.0 & other.0 != 0
    }

    fn or(self, other: Outcomes) -> Outcomes {
        Outcomes(self.0 | other.0)
    }

    /// The outcome of one evaluation: a boolean, or an error (a non-boolean is a type error).
    pub fn of(result: Result<ast::Value, impl Sized>) -> Outcomes {
        match result.as_ref().map(ast::Value::value_kind) {
            Ok(ast::ValueKind::Lit(ast::Literal::Bool(true))) => Outcomes::TRUE,
            Ok(ast::ValueKind::Lit(ast::Literal::Bool(false))) => Outcomes::FALSE,
            _ => Outcomes::ERROR,
        }
    }

    /// A permit with these outcomes may allow (or ask for consent) for some arguments.
    pub fn may_match(self) -> bool {
        self.has(Outcomes::TRUE)
    }

    /// A forbid with these outcomes denies whatever the arguments: it matches or fails.
    pub fn always_denies(self) -> bool {
        !self.has(Outcomes::FALSE)
    }

    /// `self` where `true` continues with `then`, `false` with `otherwise`, an error stays.
    fn branch(
        self,
        then: impl FnOnce() -> Outcomes,
        otherwise: impl FnOnce() -> Outcomes,
    ) -> Outcomes {
        let mut out = Outcomes::NONE;
        if self.has(Outcomes::TRUE) {
            out = out.or(then());
        }
        if self.has(Outcomes::FALSE) {
            out = out.or(otherwise());
        }
        if self.has(Outcomes::ERROR) {
            out = out.or(Outcomes::ERROR);
        }
        out
    }
}

/// A condition with its argument-reading parts unknown.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    /// Reads no argument: evaluated as for a call.
    Known(Expr),
    /// Reads the arguments, and is not `&&`, `||`, `!` or `if`: any outcome.
    Unknown,
    And(Box<Shape>, Box<Shape>),
    Or(Box<Shape>, Box<Shape>),
    Not(Box<Shape>),
    If(Box<Shape>, Box<Shape>, Box<Shape>),
}

impl Shape {
    /// The shape of `condition`, or `None` when it reads no argument (evaluate it as it is).
    pub fn of(condition: &Expr) -> Option<Shape> {
        reads_arguments(condition).then(|| shape(condition))
    }

    /// The outcomes over all argument values, evaluating the known parts with `evaluator`.
    /// Follows Cedar's short-circuit order: `a && b` is `b` where `a` is true, false where `a`
    /// is false, an error where `a` fails.
    pub fn outcomes(&self, evaluator: &Evaluator<'_>, slots: &ast::SlotEnv) -> Outcomes {
        let of = |s: &Shape| s.outcomes(evaluator, slots);
        match self {
            Shape::Known(expr) => Outcomes::of(evaluator.interpret(expr, slots)),
            Shape::Unknown => Outcomes::ANY,
            Shape::And(a, b) => of(a).branch(|| of(b), || Outcomes::FALSE),
            Shape::Or(a, b) => of(a).branch(|| Outcomes::TRUE, || of(b)),
            Shape::Not(a) => of(a).branch(|| Outcomes::FALSE, || Outcomes::TRUE),
            Shape::If(test, then, otherwise) => of(test).branch(|| of(then), || of(otherwise)),
        }
    }
}

fn shape(expr: &Expr) -> Shape {
    if !reads_arguments(expr) {
        return Shape::Known(expr.clone());
    }
    let boxed = |e: &Expr| Box::new(shape(e));
    match expr.expr_kind() {
        ExprKind::And { left, right } => Shape::And(boxed(left), boxed(right)),
        ExprKind::Or { left, right } => Shape::Or(boxed(left), boxed(right)),
        ExprKind::UnaryApp {
            op: UnaryOp::Not,
            arg,
        } => Shape::Not(boxed(arg)),
        ExprKind::If {
            test_expr,
            then_expr,
            else_expr,
        } => Shape::If(boxed(test_expr), boxed(then_expr), boxed(else_expr)),
        _ => Shape::Unknown,
    }
}

/// Whether `expr` may read the arguments: it reads `context.arguments` or
/// `context.decimal_arguments` (`.`, `has`), or uses `context` other than through one named
/// attribute (the whole record holds the arguments too).
fn reads_arguments(expr: &Expr) -> bool {
    let argument = |attr: &str| attr == "arguments" || attr == "decimal_arguments";
    let is_context = |e: &Expr| matches!(e.expr_kind(), ExprKind::Var(ast::Var::Context));
    let mut uses = 0usize;
    let mut other_attributes = 0usize;
    for e in expr.subexpressions() {
        match e.expr_kind() {
            ExprKind::Var(ast::Var::Context) => uses += 1,
            ExprKind::GetAttr { expr, attr } | ExprKind::HasAttr { expr, attr }
                if is_context(expr) =>
            {
                if argument(attr) {
                    return true;
                }
                other_attributes += 1;
            }
            ExprKind::ExtHasAttr { expr, attrs } if is_context(expr) => {
                if argument(attrs.first()) {
                    return true;
                }
                other_attributes += 1;
            }
            _ => {}
        }
    }
    uses > other_attributes
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::{Policy, PolicyId};

    fn condition(when: &str) -> Expr {
        let text = format!("permit (principal, action, resource) when {{ {when} }};");
        let policy = Policy::parse(Some(PolicyId::new("p")), text).unwrap();
        let core: &ast::Policy = policy.as_ref();
        core.non_scope_constraints().unwrap().clone()
    }

    #[test]
    fn finds_argument_reads() {
        for (when, reads) in [
            ("context.hour < 9", false),
            ("context has agent && context.agent == Agent::\"a\"", false),
            ("context has arguments", true),
            ("context.arguments has amount", true),
            (
                "context.decimal_arguments.amount.lessThan(decimal(\"1.0\"))",
                true,
            ),
            ("context[\"arguments\"][\"to\"] == \"x\"", true),
            ("context has arguments.amount", true),
            ("context has agent.x", false),
            ("context == {}", true),
            ("resource.name == \"arguments\"", false),
        ] {
            assert_eq!(reads_arguments(&condition(when)), reads, "{when}");
        }
    }

    #[test]
    fn keeps_the_boolean_skeleton_down_to_the_arguments() {
        let s = Shape::of(&condition(
            "principal in Group::\"g\" && (context.arguments has a || !(context.hour < 9))",
        ))
        .unwrap();
        let Shape::And(left, right) = s else {
            panic!("{s:?}")
        };
        assert!(matches!(*left, Shape::Known(_)));
        let Shape::Or(a, b) = *right else {
            panic!("{right:?}")
        };
        assert!(matches!(*a, Shape::Unknown));
        assert!(matches!(*b, Shape::Known(_)), "{b:?}");
        assert!(Shape::of(&condition("context.hour < 9")).is_none());
    }

    #[test]
    fn combines_outcomes_in_cedar_order() {
        let t = Outcomes::TRUE;
        let f = Outcomes::FALSE;
        let e = Outcomes::ERROR;
        let any = Outcomes::ANY;
        // `x && false` is never true; `x || true` never false (it may fail).
        assert_eq!(any.branch(|| f, || f), f.or(e));
        assert_eq!(any.branch(|| t, || t), t.or(e));
        assert!(!any.branch(|| f, || f).may_match());
        assert!(any.branch(|| t, || t).always_denies());
        assert!(!any.always_denies() && any.may_match());
        assert_eq!(e.branch(|| t, || t), e);
        assert!(e.always_denies() && !e.may_match());
    }
}
