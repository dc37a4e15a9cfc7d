//! The scanner against serde_json: it takes what serde_json takes, refuses what it refuses,
//! and a message read with it is the message serde_json reads.

use proptest::prelude::*;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::is_json;
use crate::message::tests::json_value;
use crate::message::{Message, ParamsAs, parts};

fn serde_takes(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

#[test]
fn takes_and_refuses_what_serde_json_does() {
    let cases = [
        "0",
        "-0",
        "01",
        "-",
        "-a",
        "1.",
        ".5",
        "1.5",
        "1e",
        "1e+",
        "1e+5",
        "1E-05",
        "1.0e3",
        "-1.25E+10",
        "12a",
        "1 2",
        "true",
        "tru",
        "truex",
        "nul",
        "null",
        "false ",
        " [ ] ",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{}",
        "{ }",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\":1 \"b\":2}",
        "{\"a\" : 1 , \"b\" :[ ] }",
        "{1:2}",
        "\"\"",
        "\"abc",
        "\"a\\\"",
        "\"\\\"\"",
        "\"\\u00e9\"",
        "\"\\u00g9\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\x\"",
        "\"\\/\\b\\f\\n\\r\\t\"",
        "\"tab\there\"",
        "\"line\nbreak\"",
        "\"\u{1f}\"",
        "\"\u{7f}\"",
        "\"é日本\"",
        "\"0123456789abcdef\\\"0123\"",
        "\"01234567\"",
        "[\"a\",{\"b\":[null]}]",
        "",
        " ",
        "{}x",
        "{} {}",
        "\u{feff}{}",
        "[1]]",
        "{\"a\":1}}",
        "\t\n\r{}\r\n\t",
    ];
    for text in cases {
        assert_eq!(is_json(text), serde_takes(text), "{text:?}");
    }
}

#[test]
fn takes_as_deep_a_nesting_as_serde_json_reads_into_a_tree() {
    for depth in [1, 126, 127, 128, 129, 400] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let tree = serde_json::from_str::<Value>(&text).is_ok();
            assert_eq!(is_json(&text), tree, "{depth} {open}");
            assert_eq!(tree, depth <= 127, "{depth} {open}");
        }
    }
}

#[test]
fn a_message_nested_deeper_than_the_scanner_takes_is_read_as_before() {
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let text = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a","arguments":{{"x":{deep}}}}}}}"#
    );
    assert!(parts::scanned_frame(&text, ParamsAs::Text).is_none());
    let msg = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(msg.param_str("name"), Some("a"));
    assert_eq!(msg.to_bytes(), text.as_bytes());
}

#[test]
fn reads_the_usual_messages_and_leaves_the_rest_to_serde_json() {
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let taken = [
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"fx__echo","arguments":{{"text":"hi"}},{meta}}}}}"#
        ),
        r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}],"isError":false}}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no such method"}}"#.to_string(),
        "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 7,\n  \"result\": { \"a\" : [ 1 ] }\n}".to_string(),
    ];
    for text in &taken {
        assert!(
            parts::scanned_frame(text, ParamsAs::Text).is_some(),
            "{text}"
        );
    }
    let left = [
        // A name with an escape, a repeated name, params or result not an object, params
        // with names not kept as text, `_meta` not an object or with an escaped name.
        r#"{"jsonrpc":"2.0","i\u0064":7,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":7,"id":8,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"ping","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":7,"result":"done"}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"a","params":{"name":"x","name":"y"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"a","params":{"n\u0061me":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"a","params":{"_meta":[]}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"a","params":{"_meta":{"\u0061":1}}}"#,
        r#"{"jsonrpc":"2.0","id":7,"result":{"is\u0045rror":true}}"#,
        // Not JSON: serde_json says why.
        r#"{"jsonrpc":"2.0","id":7,"method":"a",}"#,
        r#"[{"jsonrpc":"2.0","id":7,"method":"a"}]"#,
    ];
    for text in left {
        assert!(
            parts::scanned_frame(text, ParamsAs::Text).is_none(),
            "{text}"
        );
    }
    // Asked for as a tree, params are serde_json's.
    assert!(parts::scanned_frame(&taken[0], ParamsAs::Tree).is_none());
    assert!(parts::scanned_frame(&taken[1], ParamsAs::Tree).is_some());
}

/// The bytes a mutation may put in: those JSON gives a meaning to, and some it does not.
const BYTES: &[u8] = b"\"\\{}[],:0-.eEt u\n\x01x9+/";

/// `text` with one byte replaced, put in or taken out at `at`, or cut there.
fn mutated(text: &str, at: usize, op: u8, byte: u8) -> Option<String> {
    let mut b = text.as_bytes().to_vec();
    let at = at % (b.len() + 1);
    match op % 4 {
        0 if at < b.len() => b[at] = byte,
        1 => b.insert(at, byte),
        2 if at < b.len() => {
            b.remove(at);
        }
        _ => b.truncate(at),
    }
    String::from_utf8(b).ok()
}

/// Everything a stage reads of a message, and what it writes.
fn seen(msg: &Message) -> String {
    let meta = ["io.modelcontextprotocol/protocolVersion", "a", "b"].map(|k| msg.meta_str(k));
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        msg.kind(),
        msg.id(),
        msg.method(),
        msg.param_str("name"),
        meta,
        msg.has_meta(),
        msg.result_type(),
        msg.result_is_error(),
        msg.raw_result(),
        String::from_utf8_lossy(&msg.to_bytes()),
        msg.clone().into_value(),
    )
}

fn message_text(
    top: &[(&str, Value)],
    params: &[(&str, Value)],
    result: Option<&Value>,
    pretty: bool,
) -> String {
    let (gap, colon) = if pretty { ("\n ", " : ") } else { ("", ":") };
    let member = |k: &str, v: String| format!("{gap}\"{k}\"{colon}{v}");
    let mut members: Vec<String> = top
        .iter()
        .map(|(k, v)| member(k, serde_json::to_string(v).unwrap()))
        .collect();
    if !params.is_empty() {
        let inner: Vec<String> = params
            .iter()
            .map(|(k, v)| member(k, serde_json::to_string(v).unwrap()))
            .collect();
        members.push(member("params", format!("{{{}}}", inner.join(","))));
    }
    if let Some(result) = result {
        let text = match pretty {
            true => serde_json::to_string_pretty(result).unwrap(),
            false => serde_json::to_string(result).unwrap(),
        };
        members.push(member("result", text));
    }
    format!("{{{}{gap}}}", members.join(","))
}

fn name() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => prop::sample::select(vec!["name", "arguments", "_meta", "a", "é"]),
        1 => Just("k\\\""),
    ]
}

/// The message's members but `params` and `result`: mostly a request's or a reply's.
fn top_members() -> impl Strategy<Value = Vec<(&'static str, Value)>> {
    let id = prop_oneof![
        4 => (0..1_000u64).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        2 => "[a-z\\\\é\"]{0,6}".prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    let extra = (
        prop::sample::select(vec!["error", "x", "i\\u0064", "id", "method"]),
        json_value(),
    );
    (
        prop::option::weighted(0.9, id),
        prop::option::weighted(
            0.6,
            prop::sample::select(vec!["tools/call", "ping", "\\u0070"]),
        ),
        prop::collection::vec(extra, 0..2),
    )
        .prop_map(|(id, method, extra)| {
            let mut top = vec![("jsonrpc", Value::from("2.0"))];
            top.extend(id.map(|id| ("id", id)));
            top.extend(method.map(|m| ("method", Value::from(m))));
            top.extend(extra);
            top
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn takes_a_text_exactly_when_serde_json_does(
        v in json_value(),
        pretty in any::<bool>(),
        at in any::<usize>(),
        op in any::<u8>(),
        byte in prop::sample::select(BYTES),
        mutate in any::<bool>(),
    ) {
        let text = match pretty {
            true => serde_json::to_string_pretty(&v).unwrap(),
            false => serde_json::to_string(&v).unwrap(),
        };
        let text = if mutate { mutated(&text, at, op, byte) } else { Some(text) };
        prop_assume!(text.is_some());
        let text = text.unwrap();
        prop_assert_eq!(is_json(&text), serde_takes(&text), "{:?}", text);
    }

    #[test]
    fn a_message_read_with_the_scanner_is_the_message_serde_json_reads(
        top in top_members(),
        params in prop::collection::vec((name(), json_value()), 0..5),
        repeat in prop::bool::weighted(0.1),
        meta in prop::collection::vec(
            (prop::sample::select(vec!["io.modelcontextprotocol/protocolVersion", "a", "b", "\\u0061"]),
             json_value()),
            0..4,
        ),
        meta_as_object in any::<bool>(),
        result in prop::option::weighted(0.5, json_value()),
        pretty in any::<bool>(),
        tree in any::<bool>(),
        mutation in prop::option::weighted(0.3, (any::<usize>(), any::<u8>(), prop::sample::select(BYTES))),
    ) {
        let mut params = params;
        if !repeat {
            let mut seen = std::collections::HashSet::new();
            params.retain(|(k, _)| seen.insert(*k));
        }
        let meta_text = format!(
            "{{{}}}",
            meta.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",")
        );
        let params: Vec<(&str, Value)> = params
            .into_iter()
            .map(|(k, v)| match (k, meta_as_object) {
                ("_meta", true) => (k, serde_json::from_str(&meta_text).unwrap_or(v)),
                _ => (k, v),
            })
            .collect();
        let text = message_text(&top, &params, result.as_ref(), pretty);
        let text = match mutation {
            Some((at, op, byte)) => mutated(&text, at, op, byte),
            None => Some(text),
        };
        prop_assume!(text.is_some());
        let text = text.unwrap();
        let params_as = if tree { ParamsAs::Tree } else { ParamsAs::Text };
        let scanned = Message::parse_with(text.as_bytes(), params_as);
        let parsed = Message::parse_by_parser(&text, params_as);
        match (&scanned, &parsed) {
            (Ok(a), Ok(b)) => prop_assert_eq!(seen(a), seen(b), "{}", text),
            (Err(a), Err(b)) => prop_assert_eq!(a, b, "{}", text),
            _ => prop_assert!(false, "{}: {:?} against {:?}", text, scanned.is_ok(), parsed.is_ok()),
        }
    }
}
