//! A message's members written out as compact JSON, byte for byte what `serde_json::to_writer`
//! writes (a test holds it to that), but with strings copied in runs: serde_json looks at every
//! byte of a string through its escape table, which made writing a call's arguments upstream
//! cost more than parsing them (callgrind: 8.7 instructions a byte on a 10 KiB text). Here a
//! string is searched sixteen bytes at a time for what must be escaped, and the runs between
//! are copied whole.

use serde_json::Value;

use super::swar;

/// Appends `value` as compact JSON.
pub(super) fn value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Writing a number into a vector cannot fail; serde_json's own digits are kept.
        Value::Number(n) => _ = serde_json::to_writer(&mut *out, n),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                self::value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                self::value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Appends `s` as a JSON string: `"` and `\` escaped with a backslash, the control characters
/// below U+0020 as `\b \t \n \f \r` or `\u00xx`, everything else as it is.
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..at]);
        escape(out, bytes[at]);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The offset of the first byte at or after `from` that must be escaped. Sixteen bytes are
/// tested at a time, written so that the compiler makes one vector comparison of them; the last
/// fifteen or fewer eight at a time in a word (most of a message's strings are names and short
/// values, and byte by byte they cost five instructions a byte).
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = &bytes[from..];
    let mut chunks = rest.chunks_exact(16);
    let mut at = from;
    for chunk in chunks.by_ref() {
        let mut sixteen = [0u8; 16];
        sixteen.copy_from_slice(chunk);
        if sixteen.iter().fold(false, |any, &b| any | needs_escape(b)) {
            return sixteen
                .iter()
                .position(|&b| needs_escape(b))
                .map(|k| at + k);
        }
        at += 16;
    }
    if at + 8 <= bytes.len() {
        if let Some(k) = swar::first(swar::escapes(swar::load(bytes, at))) {
            return Some(at + k);
        }
        at += 8;
    }
    if at == bytes.len() {
        return None;
    }
    if bytes.len() >= 8 {
        // The last bytes as the word that ends the string, those already tested shifted out.
        let seen = 8 - (bytes.len() - at);
        let word = swar::load(bytes, bytes.len() - 8) >> (8 * seen);
        // The bytes shifted in are zero, which would count as control characters.
        let fresh = u64::MAX >> (8 * seen);
        return swar::first(swar::escapes(word) & fresh).map(|k| at + k);
    }
    let len = bytes.len();
    if len >= 4 && at == 0 {
        // Four to seven bytes, searched from the start: the first four and the last four (which
        // overlap), each in the low half of a word.
        const LOW: u64 = 0xffff_ffff;
        return swar::first(swar::escapes(swar::load_four(bytes, 0)) & LOW).or_else(|| {
            swar::first(swar::escapes(swar::load_four(bytes, len - 4)) & LOW).map(|k| len - 4 + k)
        });
    }
    bytes[at..]
        .iter()
        .position(|&b| needs_escape(b))
        .map(|k| at + k)
}

/// Below `0x20`, `"` or `\\` (tested without branches, so that sixteen tests are one vector op).
pub(super) fn needs_escape(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

fn escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0C => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        value(&mut out, v);
        out
    }

    #[test]
    fn every_byte_that_must_be_escaped_is_found_at_every_place() {
        for b in 0..=255u8 {
            for len in (1..=9).chain([15, 16, 17, 23, 24, 25, 31, 32, 33, 40]) {
                for k in 0..len {
                    let mut text = vec![b'x'; len];
                    text[k] = b;
                    for from in [0, 1, 5, 8, 17].into_iter().filter(|&f| f <= len) {
                        let want = (needs_escape(b) && k >= from).then_some(k);
                        assert_eq!(
                            next_escape(&text, from),
                            want,
                            "byte {b:#x} at {k} of {len}, from {from}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_character_is_written_as_serde_json_writes_it() {
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        for s in [
            all.as_str(),
            "",
            "\"",
            "\\",
            "a\u{7f}b",
            "\u{2028}\u{1F600}",
            "0123456\n",
        ] {
            let v = Value::String(s.to_string());
            assert_eq!(written(&v), serde_json::to_vec(&v).unwrap(), "{s:?}");
        }
        let v = serde_json::json!({"a": [1, -2, 1.5, 1e300, u64::MAX, null, true, false, {}, []],
            "b\n": {"c": "d\u{0}e"}, "": ""});
        assert_eq!(written(&v), serde_json::to_vec(&v).unwrap());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[\\x00-\\x7f]{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_are_written_as_serde_json_writes_them(v in json_value()) {
            prop_assert_eq!(written(&v), serde_json::to_vec(&v).unwrap());
        }
    }
}
