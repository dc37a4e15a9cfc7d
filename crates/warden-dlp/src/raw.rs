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
                let literal = self.string()?;
                self.scan(literal);
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
            let key = self.string()?;
            self.eat(b':')?;
            self.path.push(Step::Key(key.text));
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

    /// The string literal at the cursor.
    fn string(&mut self) -> Option<Literal<'a>> {
        let literal = literal(self.json, self.at)?;
        self.at = literal.span.end;
        Some(literal)
    }

    /// Scans one string value and notes its rewrites: each replaced span of the literal with its
    /// replacement, escaped; the rest of the literal stays as it was, escapes included.
    fn scan(&mut self, literal: Literal<'_>) {
        let path = &self.path;
        let edits = self
            .engine
            .edits(&literal.text, || path_of(path), &mut self.outcome);
        let inside = literal.span.start + 1;
        self.edits.reserve(edits.len());
        for (range, replacement) in edits {
            let start = inside + literal.inner_offset(range.start);
            let end = inside + literal.inner_offset(range.end);
            self.edits.push((start..end, escape_text(replacement)));
        }
    }
}

/// Whether `b` holds a byte below `0x20`, which a JSON string literal must escape. Sixteen
/// bytes are tested at a time, written so that the compiler makes one vector comparison of them.
fn has_control(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(16);
    let found = chunks.by_ref().any(|chunk| {
        let mut sixteen = [0u8; 16];
        sixteen.copy_from_slice(chunk);
        sixteen.iter().fold(false, |any, &c| any | (c < 0x20))
    });
    found || chunks.remainder().iter().any(|&c| c < 0x20)
}

/// A string literal of the text: where it is, what it says, and where its escapes are.
struct Literal<'a> {
    /// The literal, quotes included.
    span: Range<usize>,
    text: Cow<'a, str>,
    /// For each escape, in order: where its character ends in `text`, and how many bytes longer
    /// the literal's inside is than `text` up to there. Empty when the literal has no escapes
    /// (`text` is then its inside).
    escapes: Vec<(usize, usize)>,
}

impl Literal<'_> {
    /// The offset in the literal's inside (between the quotes) of offset `at` of its text, which
    /// is on a character boundary (an escape stands for one whole character, so `at` is never
    /// inside one).
    fn inner_offset(&self, at: usize) -> usize {
        let before = self.escapes.partition_point(|&(end, _)| end <= at);
        at + before.checked_sub(1).map_or(0, |k| self.escapes[k].1)
    }
}

/// The string literal whose opening quote is at `start` of `json`; `None` if there is none, or
/// it holds a byte below `0x20` or an escape that is not valid JSON (a lone surrogate included,
/// as serde_json has it).
fn literal(json: &str, start: usize) -> Option<Literal<'_>> {
    let b = json.as_bytes();
    if b.get(start) != Some(&b'"') {
        return None;
    }
    let inside = start + 1;
    // The closing quote is the first one after an even number of backslashes.
    let mut end = inside;
    loop {
        end += memchr::memchr(b'"', b.get(end..)?)?;
        let backslashes = b[inside..end]
            .iter()
            .rev()
            .take_while(|&&c| c == b'\\')
            .count();
        if backslashes % 2 == 0 {
            break;
        }
        end += 1;
    }
    let span = start..end + 1;
    let inner = &b[inside..end];
    if memchr::memchr(b'\\', inner).is_none() {
        return (!has_control(inner)).then(|| Literal {
            span,
            text: Cow::Borrowed(&json[inside..end]),
            escapes: Vec::new(),
        });
    }
    let (text, escapes) = unescape(inner)?;
    Some(Literal {
        span,
        text: Cow::Owned(text),
        escapes,
    })
}

/// The text of a literal's inside that holds escapes, and where they are (see
/// [`Literal::escapes`]); `None` if it holds a byte below `0x20` or an escape that is not valid
/// JSON. The bytes between escapes are found sixteen at a time and copied in one piece.
fn unescape(inner: &[u8]) -> Option<(String, Vec<(usize, usize)>)> {
    let mut text = Vec::with_capacity(inner.len());
    // Room for a line break every 64 bytes (text with many escapes grows it); counting them
    // first would cost more than growing.
    let mut escapes = Vec::with_capacity(inner.len() / 64);
    let mut i = 0;
    loop {
        let Some(at) = next_special(inner, i) else {
            text.extend_from_slice(&inner[i..]);
            // Whole characters were copied between escapes, and each escape is one character.
            return Some((String::from_utf8(text).ok()?, escapes));
        };
        text.extend_from_slice(&inner[i..at]);
        if inner[at] != b'\\' {
            return None;
        }
        let (c, len) = escape(&inner[at..])?;
        text.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        i = at + len;
        escapes.push((text.len(), i - text.len()));
    }
}

/// The offset of the first backslash or byte below `0x20` in `b` from `from` on.
fn next_special(b: &[u8], from: usize) -> Option<usize> {
    let special = |c: u8| (c == b'\\') | (c < 0x20);
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 16) {
        let mut sixteen = [0u8; 16];
        sixteen.copy_from_slice(chunk);
        if sixteen.iter().fold(false, |any, &c| any | special(c)) {
            // Located in `chunk`, not `sixteen`: with both uses of one array the compiler no
            // longer makes the test above a vector one.
            return Some(i + first_special(chunk));
        }
        i += 16;
    }
    b[i..].iter().position(|&c| special(c)).map(|k| i + k)
}

/// The offset of the first backslash or byte below `0x20` in `chunk`, sixteen bytes that hold
/// one: a word test of each half. In each word the lowest byte flagged is exact (a borrow only
/// flags bytes above a true one).
fn first_special(chunk: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const TOPS: u64 = ONES * 0x80;
    let flags = |k: usize| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&chunk[k..k + 8]);
        let x = u64::from_le_bytes(eight);
        let below = x.wrapping_sub(ONES * 0x20) & !x;
        let y = x ^ (ONES * u64::from(b'\\'));
        let backslash = y.wrapping_sub(ONES) & !y;
        (below | backslash) & TOPS
    };
    let low = flags(0);
    if low != 0 {
        (low.trailing_zeros() / 8) as usize
    } else {
        8 + (flags(8).trailing_zeros() / 8) as usize
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
    let mut path = String::with_capacity(32);
    path.push('$');
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
            let ours = super::literal(literal, 0).map(|l| l.text.into_owned());
            let theirs = serde_json::from_str::<String>(literal).ok();
            assert_eq!(ours, theirs, "{literal}");
            assert!(ours.is_some(), "{literal}");
        }
        assert!(super::literal("\"0123456789\x1f\"", 0).is_none());
        assert!(super::literal("\"0123456789 \u{7f} é\"", 0).is_some());
    }

    /// Every offset of a literal's text maps to the offset in its inside where the same
    /// character starts.
    #[test]
    fn offsets_of_the_text_map_into_the_literal() {
        let texts = [
            "plain text",
            r"a\nb\tc",
            r#"\\\"\"\\"#,
            r"é\u00e9€\ud83d\ude00x\/y",
            r"\n\n\n",
        ];
        for inside in texts {
            let json = format!("\"{inside}\"");
            let literal = super::literal(&json, 0).unwrap_or_else(|| panic!("{json}"));
            assert_eq!(literal.span, 0..json.len());
            let text = &literal.text;
            let mut inner_at = 0;
            for (at, c) in text.char_indices() {
                let mapped = literal.inner_offset(at);
                assert!(mapped >= inner_at, "{json} at {at}");
                let one = super::literal(&format!("\"{}\"", &inside[mapped..]), 0)
                    .map(|l| l.text.chars().next());
                assert_eq!(one, Some(Some(c)), "{json} at {at}");
                inner_at = mapped;
            }
            assert_eq!(literal.inner_offset(text.len()), inside.len(), "{json}");
        }
    }

    #[test]
    fn the_word_test_finds_the_first_backslash_or_control_byte() {
        for at in 0..16 {
            for b in (0..0x20).chain([b'\\']) {
                for filler in [b'a', b'"', 0x20, 0x7f, 0xc3, 0xff] {
                    let mut chunk = [filler; 16];
                    chunk[at] = b;
                    // A second one later, and every kind of byte before it, change nothing.
                    chunk[15] = if at < 15 { b'\\' } else { b };
                    assert_eq!(super::first_special(&chunk), at, "{b:#x} at {at}");
                }
            }
        }
    }

    /// `chars` as the inside of a JSON string literal: each character written as it is where
    /// JSON allows, or (where its flag says, and always for `"`, `\\` and controls) as an
    /// escape: `\/`, `\uXXXX` in either case, a surrogate pair above U+FFFF.
    fn escaped(chars: &[(char, bool)]) -> String {
        let mut out = String::new();
        for &(c, escape) in chars {
            let must = c == '"' || c == '\\' || c < ' ';
            if !escape && !must {
                out.push(c);
            } else if c == '/' {
                out.push_str("\\/");
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let hex = format!("\\u{unit:04x}");
                    out.push_str(&if escape {
                        hex.to_uppercase().replace("\\U", "\\u")
                    } else {
                        hex
                    });
                }
            }
        }
        out
    }

    fn text_chars() -> impl proptest::strategy::Strategy<Value = Vec<(char, bool)>> {
        let c = proptest::prop_oneof![
            proptest::strategy::Just('\n'),
            proptest::strategy::Just('"'),
            proptest::strategy::Just('\\'),
            proptest::strategy::Just('/'),
            proptest::strategy::Just('\u{1}'),
            proptest::strategy::Just('😀'),
            proptest::char::range('a', 'z'),
            proptest::char::any(),
        ];
        proptest::collection::vec((c, proptest::bool::weighted(0.2)), 0..120)
    }

    proptest::proptest! {
        /// Long texts with escapes of every form anywhere, across the sixteen-byte steps: read
        /// as serde_json reads them, every offset mapped to where its character starts.
        #[test]
        fn literals_read_as_serde_json_reads_them(chars in text_chars()) {
            let json = format!("\"{}\"", escaped(&chars));
            let s: String = chars.iter().map(|&(c, _)| c).collect();
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&json).ok(), Some(s.clone()));
            let literal = super::literal(&json, 0);
            let literal = literal.unwrap_or_else(|| panic!("{json}"));
            proptest::prop_assert_eq!(&*literal.text, s.as_str());
            proptest::prop_assert_eq!(literal.span.clone(), 0..json.len());
            let inside = &json[1..json.len() - 1];
            for (at, c) in s.char_indices() {
                let rest = format!("\"{}\"", &inside[literal.inner_offset(at)..]);
                let first = super::literal(&rest, 0).and_then(|l| l.text.chars().next());
                proptest::prop_assert_eq!(first, Some(c));
            }
            proptest::prop_assert_eq!(literal.inner_offset(s.len()), inside.len());
        }

        /// A raw byte below `0x20` anywhere in a literal, with escapes or without, is refused,
        /// as serde_json refuses it.
        #[test]
        fn a_raw_control_byte_is_refused_anywhere(
            chars in text_chars(),
            place in proptest::num::usize::ANY,
            byte in 0u8..0x20,
        ) {
            let inside = escaped(&chars);
            let at = (0..=inside.len()).filter(|&k| inside.is_char_boundary(k)).nth(place % (inside.chars().count() + 1)).unwrap_or(0);
            let json = format!("\"{}{}{}\"", &inside[..at], char::from(byte), &inside[at..]);
            proptest::prop_assert!(serde_json::from_str::<String>(&json).is_err());
            proptest::prop_assert!(super::literal(&json, 0).is_none(), "{json:?}");
        }

        /// The same in a literal without escapes, which is read without copying.
        #[test]
        fn a_raw_control_byte_is_refused_in_plain_text(
            len in 0usize..80,
            place in proptest::num::usize::ANY,
            byte in 0u8..0x20,
        ) {
            let mut inside: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
            inside.insert(place % (len + 1), byte);
            let json = format!("\"{}\"", String::from_utf8(inside).unwrap_or_default());
            proptest::prop_assert!(super::literal(&json, 0).is_none(), "{json:?}");
        }
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
            // A control byte after an escape, and one past the first sixteen bytes.
            "\"\\n\u{1}n\"",
            "\"01234\u{1}6789abcdefghijkl\"",
        ] {
            assert!(e.apply_json(bad).is_none(), "{bad:?}");
        }
    }
}
