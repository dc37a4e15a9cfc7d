//! Tests of [`super::Message`]: parsing, what is kept as text, and writing out.

use super::parts::ResultHead;
use super::*;

#[test]
fn classifies_each_kind() {
    let cases = [
        (r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, Kind::Request),
        (
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            Kind::Notification,
        ),
        (r#"{"jsonrpc":"2.0","id":"a","result":{}}"#, Kind::Response),
        (
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#,
            Kind::Error,
        ),
    ];
    for (text, kind) in cases {
        assert_eq!(
            Message::parse(text.as_bytes()).unwrap().kind(),
            kind,
            "{text}"
        );
    }
}

#[test]
fn refuses_what_is_not_one_message() {
    assert_eq!(Message::parse(b"[]"), Err(ParseError::Batch));
    assert!(matches!(
        Message::parse(b"{not json"),
        Err(ParseError::Json(_))
    ));
    for bad in [
        r#"{"id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
        r#"7"#,
    ] {
        assert!(
            matches!(Message::parse(bad.as_bytes()), Err(ParseError::Invalid(_))),
            "{bad}"
        );
    }
}

#[test]
fn keeps_unknown_fields_and_their_order() {
    let text = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"b":1,"a":[1.5,null]},"zz":true},"extra":{"k":"v"}}"#;
    let msg = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
}

#[test]
fn a_repeated_member_keeps_its_first_place_and_its_last_value() {
    // As serde_json's own map reads it: the members are kept in a list, not a map.
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"ping","id":"two","params":{}}"#;
    let msg = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(msg.id(), Some(Id::Str("two".into())));
    let want = r#"{"jsonrpc":"2.0","id":"two","method":"ping","params":{}}"#;
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), want);
    let tree: Value = serde_json::from_str(text).unwrap();
    assert_eq!(msg.into_value(), tree);
    // A repeated result (kept as text) is also the last one, in the first one's place.
    let text = r#"{"jsonrpc":"2.0","result":{"a":1},"id":3,"result":{"b":2}}"#;
    let msg = Message::parse(text.as_bytes()).unwrap();
    let want = r#"{"jsonrpc":"2.0","result":{"b":2},"id":3}"#;
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), want);
}

#[test]
fn a_passing_result_keeps_its_text_and_place() {
    let text = r#"{"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"a\"b"}],"resultType":"complete"},"id":3}"#;
    let mut msg = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(msg.kind(), Kind::Response);
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
    assert_eq!(msg.result_type(), Some("complete"));
    msg.set_id(&Id::Str("client-1".into()));
    assert_eq!(
        String::from_utf8(msg.to_bytes()).unwrap(),
        text.replace(r#""id":3"#, r#""id":"client-1""#)
    );
    assert_eq!(msg.result().unwrap()["content"][0]["text"], "a\"b");
    // Changing the result writes the changed tree in the same place.
    msg.result_mut().unwrap()["ttlMs"] = 0.into();
    let back: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
    assert_eq!(back["result"]["ttlMs"], 0);
    let keys: Vec<_> = back.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["jsonrpc", "result", "id"]);
    assert_eq!(
        msg,
        Message::from_value(back).unwrap(),
        "a parsed and a kept result compare equal"
    );
}

#[test]
fn a_replaced_result_text_keeps_its_place_and_bad_text_changes_nothing() {
    let text = r#"{"jsonrpc":"2.0","result":{"content":[],"resultType":"complete"},"id":3}"#;
    let mut msg = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(msg.result_type(), Some("complete"));
    msg.set_raw_result(r#"{"content":[{"type":"text","text":"[email]"}]}"#.into())
        .unwrap();
    assert_eq!(
        String::from_utf8(msg.to_bytes()).unwrap(),
        r#"{"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"[email]"}]},"id":3}"#
    );
    assert_eq!(
        msg.result_type(),
        None,
        "what was read of the old text is forgotten"
    );
    assert_eq!(msg.result().unwrap()["content"][0]["text"], "[email]");
    // The new text's head is read from it.
    msg.set_raw_result(r#"{"content":[],"isError":true,"resultType":"x"}"#.into())
        .unwrap();
    assert_eq!(
        (msg.result_is_error(), msg.result_type()),
        (true, Some("x"))
    );
    msg.set_raw_result(r#"{"content":[{"type":"text","text":"[email]"}]}"#.into())
        .unwrap();
    assert!(!msg.result_is_error());
    let before = msg.to_bytes();
    for bad in [
        "{",
        "",
        "[1] [2]",
        "{\"a\":}",
        r#"{"isError":true} {}"#,
        r#"{"isError":true,"content":[}"#,
        r#"{"isError":true,"isError":false"#,
    ] {
        assert!(msg.set_raw_result(bad.into()).is_err(), "{bad:?}");
        assert_eq!(msg.to_bytes(), before);
    }
    // A result changed as a tree goes back to text in the same place.
    msg.result_mut().unwrap()["n"] = 1.into();
    msg.set_raw_result("7".into()).unwrap();
    assert_eq!(
        String::from_utf8(msg.to_bytes()).unwrap(),
        r#"{"jsonrpc":"2.0","result":7,"id":3}"#
    );
}

#[test]
fn results_that_are_not_objects_pass_too() {
    let spread =
        "{\n  \"jsonrpc\": \"2.0\", \"id\": 1,\r\n  \"result\": {\n    \"a\": [1,\n 2]\n  }\n}";
    let msg = Message::parse(spread.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(msg.to_bytes()).unwrap(),
        r#"{"jsonrpc":"2.0","id":1,"result":{"a":[1,2]}}"#,
        "one line, whatever the upstream's layout"
    );
    for result in ["null", "[1,2]", "\"text\"", "7"] {
        let text = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#);
        let msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(msg.kind(), Kind::Response);
        assert_eq!(msg.result_type(), None);
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
    }
    assert!(matches!(
        Message::parse(br#"{"jsonrpc":"2.0","id":1,"result":{"a":}}"#),
        Err(ParseError::Json(_))
    ));
}

/// A `tools/call` whose `params._meta` is `meta` (as text).
fn call_with_meta(meta: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","_meta":{meta},"arguments":{{"a":1}}}}}}"#
    )
}

/// What the tree of `text` says of its `_meta`, next to what the message read from text
/// says, for `key`.
fn assert_meta_read_as_the_tree_reads_it(msg: &Message, tree: &Value, key: &str) {
    let meta = tree["params"].get("_meta").and_then(Value::as_object);
    let member = meta.and_then(|m| m.get(key));
    assert_eq!(msg.meta_str(key), member.and_then(Value::as_str), "{key}");
    assert_eq!(msg.meta_has(key), member.is_some(), "{key}");
    assert_eq!(
        msg.meta_is_object(key),
        member.is_some_and(Value::is_object),
        "{key}"
    );
    assert_eq!(msg.meta_value(key).as_ref(), member, "{key}");
}

#[test]
fn a_meta_kept_as_text_passes_byte_for_byte_and_reads_as_its_tree() {
    let meta = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"url":{}}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"progressToken":7}"#;
    let text = call_with_meta(meta);
    let mut msg = Message::parse(text.as_bytes()).unwrap();
    let tree: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
    assert!(msg.has_meta());
    for key in [
        "io.modelcontextprotocol/protocolVersion",
        "io.modelcontextprotocol/clientCapabilities",
        "io.modelcontextprotocol/clientInfo",
        "progressToken",
        "absent",
        "io.modelcontextprotocol",
    ] {
        assert_meta_read_as_the_tree_reads_it(&msg, &tree, key);
    }
    assert!(msg.meta_has_key(|k| k.starts_with("io.modelcontextprotocol/")));
    assert!(!msg.meta_has_key(|k| k.is_empty()));
    assert_eq!(
        msg.meta(),
        tree["params"]["_meta"].as_object(),
        "the whole tree"
    );
    // Changing another member of params keeps `_meta`'s text and its place.
    msg.data_params_mut()
        .insert("name".into(), Value::from("renamed"));
    assert_eq!(
        String::from_utf8(msg.to_bytes()).unwrap(),
        text.replace(r#""name":"x""#, r#""name":"renamed""#)
    );
    // Changing `_meta` makes it a tree in the same place.
    msg.params_mut().get_mut("_meta").unwrap()["progressToken"] = 8.into();
    let back: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
    assert_eq!(back["params"]["_meta"]["progressToken"], 8);
    assert_eq!(
        back["params"]["_meta"]["io.modelcontextprotocol/clientInfo"],
        tree["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]
    );
    let keys: Vec<_> = back["params"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["name", "_meta", "arguments"]);
    assert_eq!(msg.meta_value("progressToken"), Some(8.into()));
}

#[test]
fn a_meta_with_escapes_repeats_or_no_object_reads_as_the_parser_reads_it() {
    for meta in [
        // Escaped values, an escaped name (read by the parser), repeated members (the last).
        r#"{"v":"a\"b","w":"\u0041","k":1,"k":"two"}"#,
        r#"{"\u006b":"escaped name","v":"x"}"#,
        r#" { "v" : "spaced" , "o" : { } } "#,
        "{\n  \"v\": \"pretty\",\n  \"o\": {\"a\": [1,\n 2]}\n}",
        r#"{}"#,
        r#"5"#,
        r#""text""#,
        r#"null"#,
        r#"[{"v":"x"}]"#,
    ] {
        let text = call_with_meta(meta);
        let msg = Message::parse(text.as_bytes()).unwrap();
        let tree: Value = serde_json::from_str(&text).unwrap();
        for key in ["v", "w", "k", "o", "absent"] {
            assert_meta_read_as_the_tree_reads_it(&msg, &tree, key);
        }
        assert_eq!(
            msg.has_meta(),
            tree["params"]["_meta"].is_object(),
            "{meta}"
        );
        assert_eq!(msg.meta(), tree["params"]["_meta"].as_object(), "{meta}");
        let written: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
        assert_eq!(written, tree, "{meta}");
        assert!(
            !msg.to_bytes().contains(&b'\n'),
            "one line, whatever the client's layout: {meta}"
        );
        assert_eq!(msg.clone().into_value(), tree, "{meta}");
    }
    // A message without `_meta`, or with one given as a tree, reads the same way.
    let built = Message::request(
        Id::Int(1),
        "x",
        serde_json::json!({ "_meta": { "v": "tree" } }),
    );
    assert_eq!(built.meta_str("v"), Some("tree"));
    assert!(built.meta_has_key(|k| k == "v"));
    let bare = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
    assert!(!bare.has_meta() && !bare.meta_has("v") && bare.meta_value("v").is_none());
}

#[test]
fn params_kept_as_text_pass_byte_for_byte_and_change_in_place() {
    // Values as the client wrote them (escapes, a number in exponent form) pass unchanged.
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"n":1.0e2,"s":"\u0041"},"_meta":{"progressToken":"p"},"e":"\u0041","z":[]}}"#;
    let mut msg = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
    assert_eq!(msg.param_str("name"), Some("fx__echo"));
    assert_eq!(msg.param_str("z"), None, "not a string");
    assert_eq!(msg.param_str("absent"), None);
    assert_eq!(msg.meta_str("progressToken"), Some("p"));
    // A new name, longer, with what must be escaped: in place, everything else as it was.
    msg.set_param_str("name", "é \"quoted\"");
    let renamed = text.replace(r#""fx__echo""#, r#""é \"quoted\"""#);
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), renamed);
    msg.set_param_str("name", "e");
    msg.set_param_str("added", "new");
    let shorter = text.replace(r#""fx__echo""#, r#""e""#);
    let added = shorter.replace(r#""z":[]}"#, r#""z":[],"added":"new"}"#);
    assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), added);
    assert_eq!(
        msg.meta_str("progressToken"),
        Some("p"),
        "`_meta` is still found"
    );
    // An escaped string is read by the parser, as a tree; from then on the message is written
    // from the tree: what was read is what goes on.
    assert_eq!(msg.param_str("e"), Some("A"));
    let written = String::from_utf8(msg.to_bytes()).unwrap();
    assert!(
        written.contains(r#""arguments":{"n":100.0,"s":"A"}"#),
        "{written}"
    );
    assert_eq!(
        msg.params().unwrap()["arguments"],
        serde_json::json!({ "n": 100.0, "s": "A" })
    );
    msg.set_param_str("name", "after");
    assert_eq!(msg.param_str("name"), Some("after"));
    let back: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
    assert_eq!(back["params"]["name"], "after");
    assert_eq!(back["params"]["_meta"]["progressToken"], "p");
    // Read as a tree at once, it is written from the tree.
    let tree = Message::parse_with(text.as_bytes(), ParamsAs::Tree).unwrap();
    let written = String::from_utf8(tree.to_bytes()).unwrap();
    assert!(
        written.contains(r#""arguments":{"n":100.0,"s":"A"}"#),
        "{written}"
    );
    // A request without params gets them.
    let mut bare = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#).unwrap();
    bare.set_param_str("name", "n");
    assert_eq!(
        bare.to_bytes(),
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"name":"n"}}"#
    );
    let mut empty =
        Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{}}"#).unwrap();
    empty.set_param_str("name", "n");
    assert_eq!(empty.to_bytes(), bare.to_bytes());
}

#[test]
fn params_with_repeated_or_escaped_names_go_on_as_one_member_each() {
    // Kept as text, a repeated name would reach the upstream twice, and an upstream that reads
    // the first could act on what the gateway did not decide on: such params are read as a map
    // (the last value, in the first one's place) and written from it.
    for (params, name, written) in [
        (
            r#"{"name":"allowed","arguments":{},"name":"other"}"#,
            Some("other"),
            r#"{"name":"other","arguments":{}}"#,
        ),
        (
            r#"{"n\u0061me":"escaped","name":"plain"}"#,
            Some("plain"),
            r#"{"name":"plain"}"#,
        ),
        (
            r#"{"_meta":{"a":1},"name":"x","_meta":{"b":2}}"#,
            Some("x"),
            r#"{"_meta":{"b":2},"name":"x"}"#,
        ),
    ] {
        let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#);
        let mut msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(msg.param_str("name"), name, "{params}");
        let want =
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{written}}}"#);
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), want, "{params}");
        msg.set_param_str("name", "renamed");
        let back: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
        assert_eq!(back["params"]["name"], "renamed", "{params}");
    }
}

#[test]
fn params_written_across_lines_go_on_as_one_line() {
    let text = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\n \"arguments\": {\n  \"a\": [1,\r\n 2]\n }}}";
    let mut msg = Message::parse(text.as_bytes()).unwrap();
    let tree: Value = serde_json::from_str(text).unwrap();
    for _ in 0..2 {
        let written = msg.to_bytes();
        assert!(!written.contains(&b'\n') && !written.contains(&b'\r'));
        assert_eq!(serde_json::from_slice::<Value>(&written).unwrap(), tree);
        // Also once a member was changed in the text.
        msg.set_param_str("name", "x");
    }
}

#[test]
fn params_that_are_not_an_object_are_read_as_they_are() {
    // Refused in a request; passed as they are in a reply.
    assert!(matches!(
        Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1,{"_meta":{}}]}"#),
        Err(ParseError::Invalid(_))
    ));
    for params in [
        "[1,{\"_meta\":{}}]",
        "true",
        "-2",
        "3.5",
        "18446744073709551615",
        "\"s\"",
        "null",
    ] {
        let text = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{}},"params":{params}}}"#);
        let msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), text);
    }
}

#[test]
fn bodies_that_are_not_utf8_are_parse_errors_wherever_the_bad_byte_is() {
    let good = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"café"}}"#;
    let msg = Message::parse(good.as_bytes()).unwrap();
    assert_eq!(msg.param_str("name"), Some("café"));
    let reply = r#"{"jsonrpc":"2.0","id":1,"result":{"t":"😀 \u00e9"}}"#;
    assert_eq!(
        Message::parse(reply.as_bytes()).unwrap().to_bytes(),
        reply.as_bytes()
    );
    let bad: [&[u8]; 5] = [
        // A lone continuation byte in a member's string, in a raw result's string, in a key.
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"name\":\"a\x80\"}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"t\":\"\xff\"}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"\xc3\":1}}",
        // A sequence cut short at the end, and an encoded surrogate.
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}\xe2\x82",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}",
    ];
    for body in bad {
        let e = Message::parse(body).unwrap_err();
        assert!(matches!(e, ParseError::Json(_)), "{e:?}");
        assert_eq!(e.code(), codes::PARSE_ERROR);
    }
}

#[test]
fn ids_round_trip_exactly() {
    for raw in ["1", "-5", "\"abc\"", "1.5", "18446744073709551615"] {
        let v: Value = serde_json::from_str(raw).unwrap();
        let id = Id::from_value(&v).unwrap();
        assert_eq!(id.to_value(), v, "{raw}");
    }
    assert_eq!(Id::from_value(&Value::Null), None);
}

/// The head as the derived parser reads it.
fn parsed_head(text: &str) -> Option<ResultHead> {
    serde_json::from_str(text).ok()
}

/// The head of `result` as read with a reply that carries it, and as it was written out.
fn head_of_reply(result: &str) -> (Option<String>, bool, Value) {
    let text = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#);
    let msg = Message::parse(text.as_bytes()).unwrap();
    // Read before writing out: writing a result with line breaks reads it as a tree, and a
    // tree's fields are read one by one.
    let kind = msg.result_type().map(str::to_string);
    let is_error = msg.result_is_error();
    let written: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
    (kind, is_error, written["result"].clone())
}

/// A head read with its reply says what the parser says of the result's text, and the
/// result is written out as the same value.
fn assert_reply_head_is_the_parsed_head(result: &str) {
    let head = parsed_head(result);
    let (kind, is_error, written) = head_of_reply(result);
    let want = head.as_ref().and_then(|h| h.result_type.as_deref());
    assert_eq!(kind.as_deref(), want, "{result}");
    let want = head.as_ref().and_then(|h| h.is_error) == Some(true);
    assert_eq!(is_error, want, "{result}");
    assert_eq!(
        written,
        serde_json::from_str::<Value>(result).unwrap(),
        "{result}"
    );
}

#[test]
fn a_result_head_is_walked_as_the_parser_reads_it() {
    for text in [
        r#"{"content":[{"type":"text","text":"a\"}b{["}],"isError":true}"#,
        r#"{"resultType":"complete","content":[]}"#,
        r#" { "resultType" : "in\u0070ut_required" , "isError" : false } "#,
        r#"{"resultType":null,"isError":null,"x":[1,{"resultType":"no"}],"y":-1.5e3}"#,
        r#"{"resultType":"a","resultType":"b"}"#,
        r#"{"isError":1}"#,
        r#"{"resultType":7}"#,
        r#"{"result\u0054ype":"escaped name"}"#,
        r#"{"k":"\\","isError":true}"#,
        r#"{}"#,
        r#"[{"isError":true}]"#,
        r#""text""#,
        r#"null"#,
        r#"{"a":{"b":[[],{}]},"isError":false,"c":"}"}"#,
        r#"{"text":"a long text, past the first bytes:\n\\\"\\\\","isError":true}"#,
        r#"{"text":"a long text that ends in an escaped backslash\\","resultType":"x"}"#,
    ] {
        assert_eq!(ResultHead::read(text), parsed_head(text), "{text}");
        assert_reply_head_is_the_parsed_head(text);
    }
    // Escapes before, on and after the place where the walk goes from byte by byte to the
    // quote-to-quote search.
    // Also around each eight-byte word of the first 32 bytes.
    for len in (0..=34).chain([40, 41, 64, 80]) {
        for at in 0..len {
            for escape in [r#"\""#, r"\\", r"\n", r"\u0022"] {
                let mut value = "x".repeat(len);
                value.insert_str(at, escape);
                for text in [
                    format!(r#"{{"a":"{value}","isError":true}}"#),
                    format!(r#"{{"a":["{value}",{{"{value}":1}}],"resultType":"{value}"}}"#),
                    format!(r#"{{"a":"{value}"}}"#),
                ] {
                    assert_eq!(ResultHead::read(&text), parsed_head(&text), "{text}");
                }
            }
        }
    }
    // Brackets and quotes of a container at every place of the words it is read in.
    for n in 0..=17 {
        let pad = " ".repeat(n);
        let digits = "1".repeat(n + 1);
        for text in [
            format!(r#"{{"a":[{pad}{{{pad}"b"{pad}:{pad}[{pad}]{pad}}}{pad}],"isError":true}}"#),
            format!(r#"{{"a":{{"b":[{digits},[{digits}],{{}}]}},"resultType":"{pad}"}}"#),
            format!(r#"{{"a":[{digits}],"isError":false}}"#),
        ] {
            assert_eq!(ResultHead::read(&text), parsed_head(&text), "{text}");
        }
    }
}

pub(super) fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-z\\\\\"{}\\[\\],:é\n ]{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec(
                (
                    proptest::sample::select(vec!["resultType", "isError", "a", "b"]),
                    inner
                ),
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn walked_heads_match_parsed_heads(v in json_value(), pretty in proptest::bool::ANY) {
        let text = if pretty {
            serde_json::to_string_pretty(&v).unwrap()
        } else {
            serde_json::to_string(&v).unwrap()
        };
        proptest::prop_assert_eq!(ResultHead::read(&text), parsed_head(&text), "{}", text);
        assert_reply_head_is_the_parsed_head(&text);
    }

    #[test]
    fn meta_kept_as_text_reads_and_writes_as_its_tree(
        meta in proptest::collection::vec(
            (
                proptest::sample::select(vec!["a", "b", "io.modelcontextprotocol/x", "k\\\"", "é"]),
                json_value(),
            ),
            0..5,
        ),
        pretty in proptest::bool::ANY,
    ) {
        let meta = Value::Object(meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let meta_text = if pretty {
            serde_json::to_string_pretty(&meta).unwrap()
        } else {
            serde_json::to_string(&meta).unwrap()
        };
        let text = call_with_meta(&meta_text);
        let msg = Message::parse(text.as_bytes()).unwrap();
        let tree: Value = serde_json::from_str(&text).unwrap();
        for key in ["a", "b", "io.modelcontextprotocol/x", "k\\\"", "é", "absent"] {
            assert_meta_read_as_the_tree_reads_it(&msg, &tree, key);
        }
        let written: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
        proptest::prop_assert_eq!(&written, &tree);
        let mut changed = msg.clone();
        changed.params_mut();
        proptest::prop_assert_eq!(changed.to_bytes(), msg.to_bytes());
    }

    #[test]
    fn params_kept_as_text_read_and_write_as_their_tree(
        members in proptest::collection::vec(
            (
                proptest::sample::select(vec!["name", "arguments", "_meta", "k\\\"", "é", "n\\u0061me"]),
                json_value(),
            ),
            0..6,
        ),
        pretty in proptest::bool::ANY,
        name in "[a-z\\\\\"é\u{1}]{0,12}",
    ) {
        // Written by hand, so that names may repeat and carry escapes.
        let (gap, colon) = if pretty { ("\n  ", ": ") } else { ("", ":") };
        let body: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{gap}\"{k}\"{colon}{}", serde_json::to_string(v).unwrap()))
            .collect();
        let text = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{{}}}}}"#,
            body.join(",")
        );
        let msg = Message::parse(text.as_bytes()).unwrap();
        let tree: Value = serde_json::from_str(&text).unwrap();
        let params = tree["params"].as_object().unwrap();
        for key in ["name", "arguments", "k\"", "é", "absent"] {
            proptest::prop_assert_eq!(msg.param_str(key), params.get(key).and_then(Value::as_str));
        }
        let written: Value = serde_json::from_slice(&msg.to_bytes()).unwrap();
        proptest::prop_assert_eq!(&written, &tree);
        proptest::prop_assert_eq!(msg.clone().into_value(), tree.clone());
        // Byte for byte what the tree writes (which has each name once).
        let mut as_tree = msg.clone();
        as_tree.params_mut();
        proptest::prop_assert_eq!(msg.to_bytes(), as_tree.to_bytes());
        // Read as a tree at once: the same members, the same text.
        let mut read_as_tree = Message::parse_with(text.as_bytes(), ParamsAs::Tree).unwrap();
        for key in ["name", "arguments", "k\"", "é", "absent"] {
            proptest::prop_assert_eq!(read_as_tree.param_str(key), msg.param_str(key));
        }
        proptest::prop_assert_eq!(read_as_tree.to_bytes(), msg.to_bytes());
        // Changed in the text, as changed in the tree.
        let mut changed = msg.clone();
        changed.set_param_str("name", &name);
        as_tree.data_params_mut().insert("name".into(), Value::from(name.clone()));
        proptest::prop_assert_eq!(changed.to_bytes(), as_tree.to_bytes());
        proptest::prop_assert_eq!(changed.param_str("name"), Some(name.as_str()));
        read_as_tree.set_param_str("name", &name);
        proptest::prop_assert_eq!(read_as_tree.to_bytes(), changed.to_bytes());
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let _ = Message::parse(&bytes);
    }

    #[test]
    fn string_ids_survive(s in ".*") {
        let msg = Message::request(Id::Str(s.clone()), "ping", serde_json::json!({}));
        let back = Message::parse(&msg.to_bytes()).unwrap();
        proptest::prop_assert_eq!(back.id(), Some(Id::Str(s)));
    }
}

#[test]
fn a_message_stays_small_enough_to_move_inline() {
    // A message is moved between stages and through several futures per call; at this size
    // the compiler moves it with a few vector loads and stores instead of a call to `memcpy`.
    assert!(
        std::mem::size_of::<Message>() <= 80,
        "{}",
        std::mem::size_of::<Message>()
    );
}
