//! `tools/list` and `tools/call`: the fixture's tools and what each one does.
//!
//! Bad arguments give a tool result with `isError: true` (the model can read and fix
//! them); an unknown tool gives the JSON-RPC error -32602.

use std::time::Duration;

use serde_json::{Map, Value, json};
use warden_mcp::{Message, RpcError, codes};

use crate::exchange::Exchange;
use crate::interact;
use crate::state::{Fixture, Stats};

/// Longest sleep `slow` accepts, in milliseconds.
pub(crate) const MAX_SLOW_MS: u64 = 600_000;
/// Most progress steps `slow` accepts.
pub(crate) const MAX_STEPS: u64 = 10_000;
const DEFAULT_STEPS: u64 = 5;
/// Freshness the modern era advertises for the tool list.
const LIST_TTL_MS: u64 = 60_000;

/// Why a call did not produce its normal result.
pub(crate) enum CallError {
    /// The arguments are wrong: reported to the model as a tool error.
    Arguments(String),
    /// A protocol error: reported as a JSON-RPC error.
    Rpc(RpcError),
}

impl From<RpcError> for CallError {
    fn from(e: RpcError) -> Self {
        CallError::Rpc(e)
    }
}

/// A tool result with one text item.
pub(crate) fn text_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }] })
}

/// A tool result that reports a failure to the model.
pub(crate) fn error_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": true })
}

/// Lays the options' changes over one listed tool definition.
fn edit(fx: &Fixture, tool: &mut Value) {
    let name = tool["name"].as_str().unwrap_or_default().to_string();
    if name == "lookup_customer"
        && let Some(schema) = &fx.options.lookup_output_schema
    {
        tool["outputSchema"] = schema.clone();
    }
    let edits = fx.options.tool_edits.as_ref();
    let edits = edits.map(|e| {
        e.read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned()
    });
    if let Some(Some(Value::Object(fields))) = edits {
        for (k, v) in fields {
            tool[k] = v;
        }
    }
}

pub(crate) fn list(
    fx: &Fixture,
    params: Option<&Map<String, Value>>,
    ex: &Exchange,
) -> Result<Value, RpcError> {
    let tools = &fx.catalog.tools;
    let total = tools.len() + usize::from(fx.extra_enabled());
    let bad_cursor = || RpcError::new(codes::INVALID_PARAMS, "invalid cursor");
    let start = match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => {
            let offset = c.strip_prefix('t').and_then(|n| n.parse::<usize>().ok());
            offset.filter(|&o| o <= total).ok_or_else(bad_cursor)?
        }
        Some(_) => return Err(bad_cursor()),
    };
    let end = match fx.options.page_size {
        Some(size) => total.min(start.saturating_add(size.get())),
        None => total,
    };
    let mut page: Vec<Value> = (start..end)
        .map(|i| tools.get(i).unwrap_or(&fx.catalog.extra_tool).clone())
        .collect();
    if fx.options.lookup_output_schema.is_some() || fx.options.tool_edits.is_some() {
        page.iter_mut().for_each(|t| edit(fx, t));
    }
    let mut result = Map::new();
    result.insert("tools".into(), Value::Array(page));
    if end < total {
        result.insert("nextCursor".into(), format!("t{end}").into());
    }
    ex.cacheable(&mut result, LIST_TTL_MS, true);
    Ok(Value::Object(result))
}

pub(crate) async fn call(fx: &Fixture, msg: &Message, ex: &Exchange) -> Result<Value, RpcError> {
    let params = msg.params();
    let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            "tools/call needs a string \"name\"",
        ));
    };
    Stats::bump(&fx.stats.tool_calls);
    let args = match params.and_then(|p| p.get("arguments")) {
        None | Some(Value::Null) => Args(None),
        Some(Value::Object(map)) => Args(Some(map)),
        Some(_) => return Ok(error_result("arguments must be an object")),
    };
    let outcome = match name {
        "echo" => args.str("text").map(text_result),
        "add" => add(&args),
        "transfer_funds" => transfer(&args),
        "delete_records" => args
            .str("table")
            .map(|t| text_result(format!("deleted all records in {t}"))),
        "lookup_customer" => args.str("customer_id").map(customer),
        "slow" => slow(fx, &args, ex).await,
        "log" => log(&args, ex),
        "pid" => Ok(text_result(std::process::id().to_string())),
        "ask" | "sample" | "roots" => interact::call(fx, msg, name, &args, ex).await,
        "toggle_extra" => {
            let on = fx.toggle_extra();
            Ok(text_result(if on {
                "extra is now listed"
            } else {
                "extra is no longer listed"
            }))
        }
        "extra" if fx.extra_enabled() => Ok(text_result("extra")),
        _ => Err(CallError::Rpc(
            RpcError::new(codes::INVALID_PARAMS, format!("Unknown tool: {name}"))
                .with_data(json!({ "name": name })),
        )),
    };
    match outcome {
        Ok(result) => Ok(result),
        Err(CallError::Arguments(why)) => Ok(error_result(format!("invalid arguments: {why}"))),
        Err(CallError::Rpc(e)) => Err(e),
    }
}

/// A tool's arguments, read with precise complaints.
pub(crate) struct Args<'a>(pub Option<&'a Map<String, Value>>);

impl<'a> Args<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.0?.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn value(&self) -> Value {
        self.0
            .map_or_else(|| json!({}), |m| Value::Object(m.clone()))
    }

    pub(crate) fn str(&self, key: &str) -> Result<&'a str, CallError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(CallError::Arguments(format!("`{key}` must be a string"))),
            None => Err(CallError::Arguments(format!("`{key}` is required"))),
        }
    }

    fn number(&self, key: &str) -> Result<f64, CallError> {
        match self.get(key).and_then(Value::as_f64) {
            Some(n) => Ok(n),
            None if self.get(key).is_some() => {
                Err(CallError::Arguments(format!("`{key}` must be a number")))
            }
            None => Err(CallError::Arguments(format!("`{key}` is required"))),
        }
    }

    fn integer(&self, key: &str, max: u64) -> Result<Option<u64>, CallError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(CallError::Arguments(format!(
                    "`{key}` must be an integer from 0 to {max}"
                ))),
            },
        }
    }
}

/// Formats a number the way a person writes it: `3`, not `3.0`.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn add(args: &Args) -> Result<Value, CallError> {
    let sum = args.number("a")? + args.number("b")?;
    Ok(text_result(number_text(sum)))
}

fn transfer(args: &Args) -> Result<Value, CallError> {
    let to = args.str("to")?;
    let amount = args.number("amount")?;
    Ok(text_result(format!(
        "transferred {} to {to}",
        number_text(amount)
    )))
}

/// A fake customer record: every value is a documented test or example value.
fn customer(id: &str) -> Value {
    let record = json!({
        "customerId": id,
        "name": "Jane Doe",
        "email": "jane.doe@example.com",
        "phone": "+1 415 555 0100",
        "card": "4111 1111 1111 1111",
        "iban": "GB82 WEST 1234 5698 7654 32",
        "apiKey": "sk_live_FIXTUREfakeKEY0000000000",
        "awsAccessKeyId": "AKIAIOSFODNN7EXAMPLE",
    });
    let text = format!(
        "Customer {id}\nName: Jane Doe\nEmail: jane.doe@example.com\nPhone: +1 415 555 0100\n\
         Card: 4111 1111 1111 1111\nIBAN: GB82 WEST 1234 5698 7654 32\n\
         API key: sk_live_FIXTUREfakeKEY0000000000\nAWS access key: AKIAIOSFODNN7EXAMPLE"
    );
    json!({ "content": [{ "type": "text", "text": text }], "structuredContent": record })
}

/// Counts a `slow` call as cancelled if it is dropped before it finishes.
struct SlowRun<'a> {
    stats: &'a Stats,
    finished: bool,
}

impl Drop for SlowRun<'_> {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.stats.slow_completed
        } else {
            &self.stats.slow_cancelled
        };
        Stats::bump(counter);
    }
}

async fn slow(fx: &Fixture, args: &Args<'_>, ex: &Exchange) -> Result<Value, CallError> {
    let Some(ms) = args.integer("ms", MAX_SLOW_MS)? else {
        return Err(CallError::Arguments("`ms` is required".into()));
    };
    let steps = args
        .integer("steps", MAX_STEPS)?
        .unwrap_or(DEFAULT_STEPS)
        .max(1);
    Stats::bump(&fx.stats.slow_started);
    let mut run = SlowRun {
        stats: &fx.stats,
        finished: false,
    };
    let start = tokio::time::Instant::now();
    let rounds = if ex.wants_progress() { steps } else { 1 };
    for i in 1..=rounds {
        tokio::time::sleep_until(start + Duration::from_millis(ms * i / rounds)).await;
        ex.progress(i, steps);
    }
    run.finished = true;
    Ok(text_result("done"))
}

fn log(args: &Args, ex: &Exchange) -> Result<Value, CallError> {
    let level = args.str("level")?;
    let message = args.str("message")?;
    if !crate::catalog::LOG_LEVELS.contains(&level) {
        return Err(CallError::Arguments(format!("unknown level {level:?}")));
    }
    let sent = ex.log(level, Value::String(message.to_string()));
    Ok(text_result(if sent { "logged" } else { "suppressed" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(-2.0), "-2");
        assert_eq!(number_text(0.5), "0.5");
        assert_eq!(number_text(1e20), "100000000000000000000");
    }

    #[test]
    fn the_fake_card_passes_luhn() {
        let digits: Vec<u32> = "4111111111111111"
            .chars()
            .filter_map(|c| c.to_digit(10))
            .collect();
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                if i % 2 == 1 {
                    if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
                } else {
                    d
                }
            })
            .sum();
        assert_eq!(sum % 10, 0);
    }
}
