//! From a [`Request`] to what Cedar's evaluator takes: the request, the context and the two
//! entities (the user in its groups; the tool, prompt or resource in its server).
//!
//! This module and [`crate::engine`]'s evaluation are the only code that reaches under
//! `cedar-policy`'s public API, into `cedar-policy-core` (pinned to the same version), and they
//! do so for speed, measured: the public constructors parse the name `ip`/`decimal`/`datetime`
//! with the full Cedar parser on every call (~3 µs each), evaluate every context value as an
//! expression, and recompute the entity hierarchy's transitive closure, which together made a
//! decision take ~25 µs with ten policies. Here values are built directly, extension functions
//! are looked up once, and the hierarchy is given complete (a user's groups and a resource's
//! server are all its ancestors: Warden's hierarchy is one level deep).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{EntityId, EntityTypeName, EntityUid};
use cedar_policy_core::ast::{self, ExtensionFunction, PartialValue, Value};
use cedar_policy_core::entities::{self as core_entities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;

use crate::arguments::{Numbers, Scalar, Sink, normalize_fields_into};
use crate::clock::moment;
use crate::reads::Wanted;
use crate::request::{Action, Kind, Request};

/// Names parsed and extension functions looked up once per engine.
pub(crate) struct Builder {
    user: EntityTypeName,
    group: EntityTypeName,
    agent: EntityTypeName,
    kinds: [EntityTypeName; 4],
    actions: Vec<ast::EntityUID>,
    ip: &'static ExtensionFunction,
    decimal: &'static ExtensionFunction,
    datetime: &'static ExtensionFunction,
}

/// A request in Cedar's terms.
pub(crate) struct CedarCall {
    pub request: ast::Request,
    pub entities: core_entities::Entities,
}

impl Builder {
    pub fn new() -> Result<Builder, String> {
        let ty = |n: &str| EntityTypeName::from_str(n).map_err(|e| e.to_string());
        let function = |n: &str| -> Result<&'static ExtensionFunction, String> {
            let name = ast::Name::parse_unqualified_name(n).map_err(|e| e.to_string())?;
            Extensions::all_available()
                .func(&name)
                .map_err(|e| e.to_string())
        };
        let action = ty("Action")?;
        Ok(Builder {
            user: ty("User")?,
            group: ty("Group")?,
            agent: ty("Agent")?,
            kinds: [ty("Server")?, ty("Tool")?, ty("Prompt")?, ty("Resource")?],
            actions: Action::ALL
                .iter()
                .map(|a| {
                    EntityUid::from_type_name_and_id(action.clone(), EntityId::new(a.cedar_name()))
                        .into()
                })
                .collect(),
            ip: function("ip")?,
            decimal: function("decimal")?,
            datetime: function("datetime")?,
        })
    }

    fn uid(&self, ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    /// Builds the request, with only the context that the candidate policies read (`wanted`).
    /// `resource_id` is `Kind::resource_id` of the request.
    pub fn build(
        &self,
        r: &Request<'_>,
        resource_id: &str,
        wanted: Wanted<'_>,
    ) -> Result<CedarCall, String> {
        let kind = r.action.resource_kind();
        let principal = self.uid(&self.user, r.user);
        let resource = self.uid(&self.kinds[kind as usize], resource_id);

        let groups: HashSet<ast::EntityUID> = r
            .groups
            .iter()
            .map(|g| self.uid(&self.group, g).into())
            .collect();
        let mut entities = vec![entity(
            principal.clone().into(),
            Vec::new(),
            groups,
            Vec::new(),
        )];
        if kind != Kind::Server {
            let server: ast::EntityUID = self
                .uid(&self.kinds[Kind::Server as usize], r.server)
                .into();
            let (attr, tags) = match kind {
                Kind::Resource => ("uri", Vec::new()),
                _ => (
                    "name",
                    r.tags.iter().map(|(k, v)| (*k, Value::from(*v))).collect(),
                ),
            };
            entities.push(entity(
                resource.clone().into(),
                vec![(attr, Value::from(r.target))],
                HashSet::from([server]),
                tags,
            ));
        }
        let entities = core_entities::Entities::from_entities(
            entities,
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map_err(|e| e.to_string())?;

        let request = ast::Request::new(
            (principal.into(), None),
            (self.actions[r.action.slot()].clone(), None),
            (resource.into(), None),
            self.context(r, wanted)?,
            None::<&ast::RequestSchemaAllPass>,
            Extensions::all_available(),
        )
        .map_err(|e| e.to_string())?;
        Ok(CedarCall { request, entities })
    }

    fn context(&self, r: &Request<'_>, wanted: Wanted<'_>) -> Result<ast::Context, String> {
        let moment = moment(r.now, r.utc_offset_minutes);
        let mut context: BTreeMap<_, Value> = BTreeMap::new();
        for (name, numbers, decimal) in [
            ("arguments", Numbers::Natural, false),
            ("decimal_arguments", Numbers::Decimal, true),
        ] {
            if !wanted.arguments(decimal) {
                continue;
            }
            let value = match r.arguments {
                Some(v) => {
                    normalize_fields_into(self, v, numbers, |field| wanted.argument(decimal, field))
                        .map_err(|e| e.to_string())?
                }
                None => self.record(Vec::new()),
            };
            context.insert(name.into(), value);
        }
        context.insert(
            "scopes".into(),
            Value::set(r.scopes.iter().map(|s| Value::from(*s)), None),
        );
        context.insert("hour".into(), Value::from(moment.hour));
        context.insert("minute".into(), Value::from(moment.minute));
        context.insert("weekday".into(), Value::from(moment.weekday));
        context.insert("era".into(), Value::from(r.era));
        if wanted.now() {
            context.insert("now".into(), call(self.datetime, &moment.utc_text())?);
        }
        if let Some(agent) = r.agent {
            let uid: ast::EntityUID = self.uid(&self.agent, agent).into();
            context.insert("agent".into(), Value::from(uid));
        }
        if let Some(ip) = r.client_ip
            && wanted.client_ip()
        {
            // `::ffff:10.1.2.3` is the IPv4 address 10.1.2.3, so that IPv4 ranges match it.
            context.insert(
                "client_ip".into(),
                call(self.ip, &ip.to_canonical().to_string())?,
            );
        }
        Ok(ast::Context::Value(Arc::new(context)))
    }
}

/// Arguments straight from JSON to Cedar values (the mapping of [`crate::arguments`]).
impl Sink for Builder {
    type Out = Value;

    fn scalar(&self, scalar: Scalar<'_>) -> Value {
        match scalar {
            Scalar::Bool(b) => Value::from(b),
            Scalar::Long(i) => Value::from(i),
            Scalar::String(s) => Value::from(s.as_ref()),
            // A decimal's text is always a valid Cedar literal; were Cedar to refuse it, the
            // text stands in, which no decimal comparison accepts (an error, never an allow).
            Scalar::Decimal(d) => {
                let text = d.to_string();
                call(self.decimal, &text).unwrap_or_else(|_| Value::from(text))
            }
        }
    }

    fn set(&self, items: Vec<Value>) -> Value {
        Value::set(items, None)
    }

    fn record(&self, fields: Vec<(&str, Value)>) -> Value {
        Value::record(fields, None)
    }
}

fn entity(
    uid: ast::EntityUID,
    attrs: Vec<(&str, Value)>,
    ancestors: HashSet<ast::EntityUID>,
    tags: Vec<(&str, Value)>,
) -> ast::Entity {
    ast::Entity::new_with_attr_partial_value(
        uid,
        attrs
            .into_iter()
            .map(|(k, v)| (k.into(), PartialValue::Value(v))),
        HashSet::new(),
        ancestors,
        tags.into_iter()
            .map(|(k, v)| (k.into(), PartialValue::Value(v))),
    )
}

/// Calls an extension constructor (`ip("…")`, `decimal("…")`, `datetime("…")`).
fn call(function: &ExtensionFunction, text: &str) -> Result<Value, String> {
    match function.call(&[Value::from(text)]) {
        Ok(PartialValue::Value(v)) => Ok(v),
        Ok(PartialValue::Residual(_)) => Err(format!("{text:?} is not a concrete value")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arguments::{ArgValue, normalize_arguments, normalize_arguments_as_decimal};
    use proptest::prelude::*;
    use serde_json::json;

    /// The Cedar value of a documented [`ArgValue`], through Cedar's public constructors.
    fn via_public_api(a: &ArgValue) -> Value {
        let context = cedar_policy::Context::from_pairs([("x".to_owned(), a.to_expression())])
            .expect("a context");
        match AsRef::<ast::Context>::as_ref(&context) {
            ast::Context::Value(m) => m.get("x").cloned().expect("x"),
            other => panic!("not a value: {other:?}"),
        }
    }

    fn numbers() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-1_000_000i64..1_000_000, 0u32..5)
                .prop_map(|(i, d)| { serde_json::Value::from(i as f64 / 10f64.powi(d as i32)) }),
            "\\PC{0,6}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ]
    }

    proptest! {
        #[test]
        fn direct_values_equal_the_documented_mapping(
            items in prop::collection::vec(numbers(), 0..6),
            key in "\\PC{0,6}",
        ) {
            let builder = Builder::new().expect("builder");
            let args = json!({ key.clone(): items.clone(), "n": items.first().cloned() });
            for (numbers, documented) in [
                (Numbers::Natural, normalize_arguments(&args)),
                (Numbers::Decimal, normalize_arguments_as_decimal(&args)),
            ] {
                let direct = normalize_fields_into(&builder, &args, numbers, |_| true)
                    .expect("normalises");
                prop_assert_eq!(direct, via_public_api(&documented.expect("normalises")));
            }
        }
    }
}
