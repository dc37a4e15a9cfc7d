//! Least privilege per call: Warden's policy stage.
//!
//! Every MCP operation that reaches an upstream is first put to the policies a security team
//! wrote as plain [Cedar](https://www.cedarpolicy.com) files: who asks (user, groups, agent,
//! scopes), for what (server, tool, prompt, resource), with which arguments, when, and from
//! where. The answer is one of three [`Outcome`]s — **allow**, **deny**, or **consent** (allowed
//! after the user approves) — and names the policies that made it ([`Decision`]).
//!
//! The crate is pure: [`PolicyEngine::load_dir`] reading a directory is its only I/O, and the
//! clock comes in the [`Request`]. The gateway builds one [`PolicyEngine`] per (re)load, shares it
//! in an `Arc`, and swaps it whole; a set that fails to load leaves the old one serving.
//!
//! # What it must never do
//!
//! - **Allow by default.** No matching permit is a deny; an evaluation error never allows; a
//!   forbid that cannot be evaluated denies (Cedar itself would skip it).
//! - **Panic on input.** Policies, requests and arguments come from outside: every failure is a
//!   [`PolicyErrors`] at load or a deny at decision time, with the reason in the decision.
//! - **Show argument values** in `Debug` output or error messages: arguments may hold secrets.
//!
//! # The schema
//!
//! [`PolicyEngine::schema_text`] (the file `src/warden.cedarschema`) declares:
//!
//! - principals `User` in `Group`s; `Agent` (the MCP client);
//! - resources `Server`; `Tool::"<server>.<tool>"` in its `Server`, with `name` and the tags
//!   from the configuration as Cedar entity tags (`resource.hasTag("risk") &&
//!   resource.getTag("risk") == "high"`); `Prompt::"<server>.<prompt>"` likewise;
//!   `Resource::"<uri>"` in its `Server`, with `uri`;
//! - actions `call_tool`, `get_prompt` (on a `Prompt`), `read_resource`, `subscribe` (on a
//!   `Resource`), and `list_tools`, `list_resources`, `list_prompts`, `complete` (on the
//!   `Server`); see [`Action`];
//! - the context: `arguments` and `decimal_arguments` (below), `agent?: Agent`, `scopes: Set<String>`, `hour` (0–23),
//!   `minute` (0–59), `weekday` (`"mon"` … `"sun"`) in the configured UTC offset, `now: datetime`
//!   (UTC), `client_ip?: ipaddr`, `era` (`"legacy"` or `"modern"`).
//!
//! Every policy is validated against it at load, in Cedar's strict mode: an unknown entity type,
//! action or attribute, a type error, or an action applied to the wrong resource type is an
//! error naming the file, line and column ([`PolicyError`]).
//!
//! # Arguments
//!
//! [`normalize_arguments`] maps the call's JSON arguments to a Cedar record; the table is in the
//! [`arguments`] module: integers → `Long`, numbers with up to four fractional digits →
//! `decimal`, other numbers → their text as a `String`, strings → `String`, booleans → `Bool`,
//! arrays → `Set` (unordered, deduplicated), objects → `Record`, `null` → absent.
//! [`normalize_arguments_as_decimal`] gives the same arguments with every number as a `decimal`
//! (`context.decimal_arguments`), because Cedar compares a `Long` and a `decimal` with different
//! operators and a policy cannot ask which one an argument holds: amounts that may carry a
//! fraction are compared there, `context.decimal_arguments.amount.lessThanOrEqual(decimal("1000.0"))`.
//!
//! Every tool takes different arguments, and Cedar types the context once per action, not per
//! tool; an open record ("any attributes") is only an experimental Cedar feature. So the schema
//! declares `arguments` as an **empty record**, and Cedar's validator then enforces the one
//! safe way to read an argument — behind a `has` test:
//!
//! ```cedar
//! forbid (principal, action == Action::"call_tool", resource == Tool::"bank.transfer")
//! when { context.arguments has amount && context.arguments.amount > 1000 };
//! ```
//!
//! `context.arguments.amount` without the `has` test does not load ("attribute not found"), so a
//! policy can never fail at run time on a missing argument. What follows the `has` test is
//! checked when the policy is evaluated: a value of the wrong type (say `"amount": "lots"`) is an
//! evaluation error, which never allows (permit skipped, forbid denies). The validator does not
//! type-check the expression guarded by the test, so keep other conditions *before* it
//! (`principal in Group::"finance" && context.arguments has amount && …`), where they are
//! checked; [`PolicyEngine::lint`] compares the argument names a tool-scoped policy reads with
//! the tool's `inputSchema`.
//!
//! # Consent
//!
//! A permit carrying `@consent("once")` (approve this one call, bound to its arguments) or
//! `@consent("<duration>")` (`"90s"`, `"15m"`, `"1h30m"`, `"7d"`: approve this tool for that
//! long) yields [`Outcome::Consent`] instead of allow; see [`ConsentRule`]. A consent permit may
//! add `@approvers("finance-managers")`: then a member of that group approves and the caller
//! cannot approve their own call (four eyes); the groups are in [`Decision::approvers`]. Other
//! annotations: `@id("…")` names a policy (otherwise its id is `file:line`); any other
//! annotation is free text.
//!
//! # Data rules
//!
//! A permit carrying `@dlp_results("email=block, default=mask")` or `@dlp_arguments("…")` is a
//! data rule: it grants nothing, and when it matches a call it tells the gateway's DLP what to do
//! with each kind of finding — per user, group, agent, server, tool, argument or time, like any
//! policy. The matching rules are in [`Decision::data`]; see [`data`].
//!
//! # Precedence
//!
//! `forbid` always wins (and a forbid that errors denies); then a plain permit (allow); then a
//! consent permit (consent, strictest rule of those matching); otherwise deny. See [`decision`].
//!
//! # Lists
//!
//! A caller's `tools/list` (`prompts/list`, `resources/list`) shows an item when the caller
//! could use it for *some* arguments: [`PolicyEngine::visible`]. It evaluates the item's
//! policies as [`PolicyEngine::decide`] would, except that every part of a condition reading
//! `context.arguments` or `context.decimal_arguments` is unknown: it may be true, false or
//! fail. The `&&`, `||`, `!` and `if` around those parts are kept (module `visibility`), so
//! `context.arguments has n && principal in Group::"ops"` is still false outside `ops`.
//! Then:
//!
//! - the item is **visible** when a permit (plain or `@consent`) admits the caller and can be
//!   true for some arguments: `permit (principal in Group::"finance", …, resource ==
//!   Tool::"bank.pay") when { context.arguments has amount && … }` lists `bank.pay` for finance
//!   and for nobody else;
//! - unless a **forbid** admits the caller and matches (or fails) *whatever* the arguments, like
//!   a forbid on a named agent. A forbid that depends on the arguments (an amount limit) hides
//!   nothing: it decides the call, with the real arguments.
//!
//! Everything else — principal, groups, agent, scopes, tags, time, era, client address — counts
//! as for a call. The only approximation: separate argument tests are taken as independent, so
//! a condition contradicting itself about the arguments still lists the item. Whatever some
//! arguments make allowed or consent is always listed.
//!
//! # Speed
//!
//! A decision evaluates only the policies that can apply: the index ([`index`]) files them by
//! the resource and actions of their scope, so a request meets the unscoped ones and those of
//! its server and its tool; Warden checks the principal part of each scope itself and Cedar
//! evaluates only `when`/`unless` bodies, built once at load. The request's context holds only
//! what those candidate policies read — an argument no candidate reads is neither copied nor
//! normalised. Measured with `cargo bench -p warden-policy` (generated set, 2-core machine):
//! about 4 µs with 10 policies and 10 µs with 5,000 (p99 under 20 µs), against 5 ms for Cedar's
//! authorizer over all 5,000; [`PolicyEngine::visible`], run once per list item, about the same
//! (4 µs and 8 µs, p99 11–13 µs). Three modules (`build`, `visibility`, and the evaluation loop
//! of the engine) use `cedar-policy-core` directly, pinned to `cedar-policy`'s version, because
//! its public constructors cost microseconds per value; a test checks every indexed decision
//! against Cedar's own authorizer.
//!
//! # For the gateway
//!
//! - Build a [`Request`] per operation; [`Action`] says what `target` is for each one.
//! - Tool tags come from the configuration, in [`Request::tags`]; they are Cedar tags of the
//!   `Tool` (and `Prompt`) entity.
//! - Filter lists per item: keep a tool when [`PolicyEngine::visible`] holds for `CallTool` on
//!   it (`GetPrompt` for a prompt, `ReadResource` for a resource); the `ListTools` decision on
//!   the server (resource `Server::"s"`) says whether that server's tools are listed at all.
//!   `decide(…).outcome.visible()` without arguments is not the same: it hides every tool whose
//!   permit tests an argument.
//! - [`Outcome::Consent`] means "allowed if a grant covers it": grants are checked next to the
//!   decision, not in here.
//! - Server names should not contain `.`: `Tool::"a.b.c"` would not say which server it is in.

pub mod arguments;
mod build;
mod clock;
pub mod consent;
pub mod data;
pub mod decision;
mod engine;
mod error;
pub mod index;
mod lint;
mod load;
mod reads;
mod request;
mod schema;
mod scope;
mod source;
mod visibility;

pub use arguments::{
    ArgValue, NormalizeError, normalize_arguments, normalize_arguments_as_decimal,
};
pub use consent::ConsentRule;
pub use data::{DataAction, DataActions, DataRule, DataRules};
pub use decision::{Decision, Outcome, Reason};
pub use engine::PolicyEngine;
pub use error::{PolicyError, PolicyErrors};
pub use lint::{LintFinding, ToolInfo};
pub use request::{Action, Request};
pub use schema::SCHEMA_TEXT;
