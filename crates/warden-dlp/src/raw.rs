//! Scanning JSON text without building it as a tree: [`Engine::apply_json`].
//!
//! A gateway holds most replies as the text they arrived as. Parsing such a reply into values,
//! walking it and writing it out again costs more than the scan itself on a 10 KiB result; this
//! walks the text once, scans each string (unescaped first when it holds escapes), and writes
//! out only the strings whose findings rewrite them. Every string the text holds is scanned, a
//! repeated key's values included (a tree would keep only the last one, but a relayed text keeps
//! both).

use crate::{Engine, Outcome};
use std::borrow::Cow;
use std::ops::Range;

/// One step of the path to the string being scanned.
enum Step<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

/// The outcome of [`Engine::apply_json`].
#[derive(Debug, Default)]
pub struct JsonOutcome {
    /// The findings, as [`Engine::apply`] gives them.
    pub outcome: Outcome,
    /// The text with its rewritten strings, `None` when nothing was rewritten.
    pub rewritten: Option<String>,
}

impl Engine {
    /// Does what [`Engine::apply`] does to the value `json` is the text of, on the text: the
    /// same findings with the same paths, and the text with every rewritten string replaced
    /// (everything else, spacing and key order included, is kept byte for byte). `None` if
    /// `json` is not one JSON value; a caller then parses it and uses [`Engine::apply`].
    pub fn apply_json(&self, json: &str) -> Option<JsonOutcome> {
        let mut walk = Walk {
            engine: self,
            json,
            at: 0,
            path: Vec::new(),
            outcome: Outcome::default(),
            edits: Vec::new(),
        };
        walk.value(0)?;
        walk.space();
        if walk.at != json.len() {
            return None;
        }
        let rewritten = (!walk.edits.is_empty()).then(|| crate::json::splice(json, &walk.edits));
        Some(JsonOutcome {
            outcome: walk.outcome,
            rewritten,
        })
    }
}

/// Nesting deeper than this is refused (serde_json's own limit is 128).
const MAX_DEPTH: usize = 256;

struct Walk<'e, 'a> {
    engine: &'e Engine,
    json: &'a str,
    at: usize,
    path: Vec<Step<'a>>,
    outcome: Outcome,
    /// Spans of the text to replace, in order, with their new (escaped) text.
    edits: Vec<(Range<usize>, String)>,
}

impl<'a> Walk<'_, 'a> {
    fn bytes(&self) -> &'a [u8] {
        self.json.as_bytes()
    }

    fn space(&mut self) {
        let b = self.bytes();
        while self.at < b.len() && matches!(b[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.bytes().get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.space();
        match *self.bytes().get(self.at)? {
            b'"' => {
                let (span, text) = self.string()?;
                self.scan(span, text);
                Some(())
            }
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            _ => self.scalar(),
        }
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        self.at += 1;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.space();
            let (_, key) = self.string()?;
            self.eat(b':')?;
            self.path.push(Step::Key(key));
            self.value(depth + 1)?;
            self.path.pop();
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.at += 1;
        if self.eat(b']').is_some() {
            return Some(());
        }
        let mut index = 0;
        loop {
            self.path.push(Step::Index(index));
            self.value(depth + 1)?;
            self.path.pop();
            index += 1;
            if self.eat(b',').is_none() {
                return self.eat(b']');
            }
        }
    }

    /// A number, `true`, `false` or `null`: up to the next delimiter.
    fn scalar(&mut self) -> Option<()> {
        let b = self.bytes();
        let start = self.at;
        while self.at < b.len()
            && !matches!(
                b[self.at],
                b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'[' | b'{'
            )
        {
            self.at += 1;
        }
        let token = &self.json[start..self.at];
        let number = token
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'));
        (!token.is_empty() && (number || matches!(token, "true" | "false" | "null"))).then_some(())
    }

    /// The string literal at the cursor: its span (quotes included) and its text.
    fn string(&mut self) -> Option<(Range<usize>, Cow<'a, str>)> {
        let b = self.bytes();
        if b.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at;
        // From quote to quote: a quote after an odd number of backslashes is escaped. Other
        // escapes (the `\n` ending every line of a text) do not stop the search.
        let mut i = start + 1;
        loop {
            i += memchr::memchr(b'"', b.get(i..)?)?;
            let backslashes = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
            if backslashes % 2 == 0 {
                break;
            }
            i += 1;
        }
        self.at = i + 1;
        let inner = &self.json[start + 1..i];
        if has_control(inner.as_bytes()) {
            return None;
        }
        let text = if memchr::memchr(b'\\', inner.as_bytes()).is_some() {
            Cow::Owned(unescape(inner)?)
        } else {
            Cow::Borrowed(inner)
        };
        Some((start..self.at, text))
    }

    /// Scans one string value and notes its rewrites: each replaced span of the literal `span`
    /// with its replacement, escaped; the rest of the literal stays as it was, escapes included.
    fn scan(&mut self, span: Range<usize>, text: Cow<'_, str>) {
        let path = &self.path;
        let edits = self
            .engine
            .edits(&text, || path_of(path), &mut self.outcome);
        if edits.is_empty() {
            return;
        }
        let inside = span.start + 1;
        let mut offsets = Offsets {
            inner: &self.json.as_bytes()[inside..span.end - 1],
            // Unescaping made a copy; without escapes the offsets are the literal's own.
            escaped: matches!(text, Cow::Owned(_)),
            text_at: 0,
            inner_at: 0,
        };
        for (range, replacement) in edits {
            let start = inside + offsets.of(range.start);
            let end = inside + offsets.of(range.end);
            self.edits.push((start..end, escape_text(replacement)));
        }
    }
}

/// Whether `b` holds a byte below `0x20`, which a JSON string literal must escape.
fn has_control(b: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    let mut words = b.chunks_exact(8);
    // A byte below 0x20 sets a top bit, and only then (a boolean test, exact for 0x20 ≤ 0x80).
    let found = words.by_ref().any(|w| {
        let x = u64::from_le_bytes(w.try_into().unwrap_or_default());
        x.wrapping_sub(ONES * 0x20) & !x & (ONES * 0x80) != 0
    });
    found || words.remainder().iter().any(|&c| c < 0x20)
}

/// The text of a string literal's inside (`inner`, without control characters); `None` if an
/// escape is not valid JSON (a lone surrogate included, as serde_json has it).
fn unescape(inner: &str) -> Option<String> {
    let b = inner.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    loop {
        let plain = memchr::memchr(b'\\', &b[i..]).unwrap_or(b.len() - i);
        out.push_str(&inner[i..i + plain]);
        i += plain;
        if i == b.len() {
            return Some(out);
        }
        let (c, len) = escape(&b[i..])?;
        out.push(c);
        i += len;
    }
}

/// The character the escape at the start of `b` stands for, and the escape's length; `None` if
/// it is not a valid JSON escape (a lone surrogate included).
fn escape(b: &[u8]) -> Option<(char, usize)> {
    let simple = match *b.get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(b.get(2..6)?)?;
            return match high {
                0xD800..=0xDBFF => {
                    if b.get(6..8)? != b"\\u" {
                        return None;
                    }
                    let low = hex4(b.get(8..12)?)?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    Some((char::from_u32(code)?, 12))
                }
                0xDC00..=0xDFFF => None,
                _ => Some((char::from_u32(high)?, 6)),
            };
        }
        _ => return None,
    };
    Some((simple, 2))
}

/// Four hex digits.
fn hex4(h: &[u8]) -> Option<u32> {
    h.iter()
        .try_fold(0, |n, &d| Some(n << 4 | char::from(d).to_digit(16)?))
}

/// Maps offsets in a string's text to offsets in its literal's inside (between the quotes),
/// asked in increasing order.
struct Offsets<'a> {
    inner: &'a [u8],
    /// Whether the literal holds escapes; without, the two offsets are the same.
    escaped: bool,
    /// Where the walk through the literal is, in both.
    text_at: usize,
    inner_at: usize,
}

impl Offsets<'_> {
    /// The literal's offset of text offset `target`, which is on a character boundary (every
    /// escape stands for whole characters, so it never falls inside one).
    fn of(&mut self, target: usize) -> usize {
        if !self.escaped {
            return target;
        }
        loop {
            let rest = &self.inner[self.inner_at..];
            let plain = memchr::memchr(b'\\', rest).unwrap_or(rest.len());
            if target <= self.text_at + plain || plain == rest.len() {
                return (self.inner_at + target.saturating_sub(self.text_at)).min(self.inner.len());
            }
            self.text_at += plain;
            self.inner_at += plain;
            // The literal was unescaped before ([`unescape`]): its escapes are valid.
            let (c, len) = escape(&self.inner[self.inner_at..]).unwrap_or(('\0', 2));
            self.inner_at += len;
            self.text_at += c.len_utf8();
        }
    }
}

/// `s` as the inside of a JSON string literal.
fn escape_text(s: String) -> String {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return s;
    }
    // A string always serialises, quoted.
    let quoted = serde_json::to_string(&s).unwrap_or_default();
    let inside = quoted.get(1..quoted.len().saturating_sub(1));
    inside.unwrap_or_default().to_string()
}

/// The path of a string, written as [`Engine::apply`] writes it.
fn path_of(steps: &[Step<'_>]) -> String {
    let mut path = String::from("$");
    for step in steps {
        match step {
            Step::Key(key) => crate::json::push_key(&mut path, key),
            Step::Index(i) => {
                path.push('[');
                path.push_str(&i.to_string());
                path.push(']');
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use crate::Action;
    use crate::json::tests::engine;
    use serde_json::Value;

    /// `apply_json` on the text and `apply` on the value agree: findings, paths and result.
    fn agree(text: &str, action: Action) {
        let e = engine(action);
        let mut value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let tree = e.apply(&mut value);
        let raw = e
            .apply_json(text)
            .unwrap_or_else(|| panic!("not walked: {text}"));
        assert_eq!(format!("{:?}", raw.outcome), format!("{tree:?}"), "{text}");
        let out = raw.rewritten.as_deref().unwrap_or(text);
        let back: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(back, value, "{text}");
        let rewrites = tree.findings.iter().any(|f| f.action != Action::Report);
        assert_eq!(raw.rewritten.is_some(), rewrites, "{text}");
    }

    #[test]
    fn text_and_tree_agree() {
        let texts = [
            r#"{"content":[{"type":"text","text":"mail ann@example.com\nand card 4111 1111 1111 1111"}],"isError":false}"#,
            r#"{ "odd key" : [ "x" , "card 4111-1111-1111-1111" , 12.5e3, true, null, {} , [] ] }"#,
            r#"{"k\"ey\u00e9":"call +44 20 7946 0958","n":-1,"deep":[[["ghp_C3J27XDCG2LmlZGEONYlgCtjfIZ4SOcMz9CP"]]]}"#,
            r#""pay 4111\u200B1111\u200b1111\u200B1111 now""#,
            r#"{"t":"\ud83d\ude00 \u00e9\u20ac mail ann@example.com\n\tcard 4111\u00201111 1111 1111 \"q\" \\ end \ud83d\ude00"}"#,
            r#"{"structuredContent":{"email":"bob@example.com"},"content":[]}"#,
            "[]",
            "\"\"",
            "42",
        ];
        for action in [
            Action::Report,
            Action::Mask,
            Action::Pseudonymise,
            Action::Block,
        ] {
            for text in texts {
                agree(text, action);
            }
        }
    }

    #[test]
    fn untouched_text_is_kept_byte_for_byte() {
        let e = engine(Action::Mask);
        let text = "{ \"a\" :\n [1, \"mail ann@example.com\" ],\"b\":\"no data here\" }";
        let raw = e.apply_json(text).unwrap_or_else(|| panic!("not walked"));
        assert_eq!(
            raw.rewritten.as_deref(),
            Some("{ \"a\" :\n [1, \"mail [email]\" ],\"b\":\"no data here\" }")
        );
        assert_eq!(raw.outcome.findings[0].path, "$.a[1]");
        // Escapes outside the replaced spans are kept as they were.
        let escaped =
            r#"["\u00e9\t4111\u00201111 1111 1111\n\u00e9 ann@example.com \ud83d\ude00"]"#;
        let raw = e
            .apply_json(escaped)
            .unwrap_or_else(|| panic!("not walked"));
        assert_eq!(
            raw.rewritten.as_deref(),
            Some(r#"["\u00e9\t[card ••••1111]\n\u00e9 [email] \ud83d\ude00"]"#)
        );
        let clean = e.apply_json(r#"{"a":"nothing"}"#);
        assert!(clean.is_some_and(|o| o.rewritten.is_none() && o.outcome.findings.is_empty()));
    }

    #[test]
    fn a_repeated_key_has_both_values_scanned() {
        let e = engine(Action::Mask);
        let text = r#"{"t":"ann@example.com","t":"bob@example.com"}"#;
        let raw = e.apply_json(text).unwrap_or_else(|| panic!("not walked"));
        assert_eq!(raw.outcome.findings.len(), 2);
        assert_eq!(
            raw.rewritten.as_deref(),
            Some(r#"{"t":"[email]","t":"[email]"}"#)
        );
    }

    #[test]
    fn unescaping_agrees_with_serde_json() {
        let mut texts: Vec<String> = [
            "plain",
            "quote \" backslash \\ slash / tab \t nl \n cr \r",
            "\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "é € 😀 \u{10FFFF}",
            "",
        ]
        .iter()
        .map(|t| serde_json::to_string(t).unwrap_or_default())
        .collect();
        texts.extend(
            [r#""\/\u00E9\uD83D\uDE00\u0000\ud7ff\ue000x""#, r#""\\\"""#].map(String::from),
        );
        for literal in &texts {
            let inner = &literal[1..literal.len() - 1];
            let ours = super::unescape(inner);
            let theirs = serde_json::from_str::<String>(literal).ok();
            assert_eq!(ours, theirs, "{literal}");
            assert!(ours.is_some(), "{literal}");
        }
        assert!(super::has_control(b"0123456789\x1f"));
        assert!(!super::has_control("0123456789 \u{7f} é".as_bytes()));
    }

    #[test]
    fn what_is_not_one_json_value_is_refused() {
        let e = engine(Action::Mask);
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "\"open",
            "[1] [2]",
            "tru",
            "{1:2}",
            "\"a\tb\"",
            "[\"\\",
            r#""\ud800""#,
            r#""\ud800\u0041""#,
            r#""\udc00 low""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\x41""#,
            "\"nul \u{0} inside\"",
        ] {
            assert!(e.apply_json(bad).is_none(), "{bad:?}");
        }
    }
}
