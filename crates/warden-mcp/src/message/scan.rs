//! A strict JSON scanner: it finds where values end and checks them against the grammar of
//! RFC 8259 as serde_json does, without building anything.
//!
//! Reading a message through serde_json's visitors cost more than twice what checking its text
//! costs (callgrind, a modern `tools/call` and its reply: 14,400 instructions, against 6,200 for
//! serde_json's own `IgnoredAny`), because every member went through a seed, a `RawValue` and a
//! `String` of its own. The frame of the usual message is now read with this scanner (see
//! `parts::scanned`); what it does not take — and all that it finds not to be JSON — goes to
//! serde_json as before, so this scanner may refuse more than serde_json but never less. The
//! differential tests hold it to that.
//!
//! The text is UTF-8 already (checked once by the caller), so only the bytes that JSON gives a
//! meaning to are looked at: a string's content is taken as it is but for its escapes and the
//! control characters it may not hold.

use std::ops::Range;

use super::swar;

/// The deepest nesting of arrays and objects taken, counting the message's own object: what
/// serde_json takes when it reads a message as a tree (its recursion limit of 128).
const MAX_DEPTH: u32 = 127;

/// Past the whitespace at `i`.
#[inline]
pub(super) fn space(b: &[u8], mut i: usize) -> usize {
    // Every whitespace byte is at most a space: one comparison passes the usual token.
    while let Some(&c) = b.get(i)
        && c <= b' '
        && matches!(c, b' ' | b'\n' | b'\r' | b'\t')
    {
        i += 1;
    }
    i
}

/// The end (past its closing quote) of the string whose opening quote is at `i`, and whether
/// it holds an escape; `None` if it is not a JSON string.
#[inline(always)]
pub(super) fn string(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        // Eight bytes at a time to the next quote, backslash or control character.
        while j + 8 <= b.len() {
            match swar::first(swar::escapes(swar::load(b, j))) {
                Some(k) => {
                    j += k;
                    break;
                }
                None => j += 8,
            }
        }
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += match *b.get(j + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                    // Any four hex digits: whether they make a character is the reader's
                    // question, as it is serde_json's when it checks a value's text.
                    b'u' if b.get(j + 2..j + 6)?.iter().all(u8::is_ascii_hexdigit) => 6,
                    _ => return None,
                };
            }
            0..0x20 => return None,
            _ => j += 1,
        }
    }
}

/// The end of the value that starts at `i` (no whitespace before it), with `depth` arrays and
/// objects around it; `None` if it is not one JSON value.
pub(super) fn value(b: &[u8], i: usize, depth: u32) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string(b, i).map(|(end, _)| end),
        b'{' => object(b, i, depth, |_, _, at| value(b, at, depth + 1)).map(|(end, _)| end),
        b'[' => array(b, i, depth),
        b't' => literal(b, i, b"true"),
        b'f' => literal(b, i, b"false"),
        b'n' => literal(b, i, b"null"),
        _ => number(b, i),
    }
}

/// Walks the object whose `{` is at `i`, with `depth` arrays and objects around it. For each
/// member, `member` gets the range of its name inside the quotes, whether the name holds an
/// escape, and where its value starts; it returns where the value ends (having checked it,
/// with `depth + 1` around it), or `None` to stop. Returns the object's end (past its `}`) and
/// whether no whitespace stood between its tokens.
pub(super) fn object(
    b: &[u8],
    i: usize,
    depth: u32,
    mut member: impl FnMut(Range<usize>, bool, usize) -> Option<usize>,
) -> Option<(usize, bool)> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let mut j = space(b, i + 1);
    let mut compact = j == i + 1;
    if b.get(j) == Some(&b'}') {
        return Some((j + 1, compact));
    }
    loop {
        if b.get(j) != Some(&b'"') {
            return None;
        }
        let (name_end, escaped) = string(b, j)?;
        let colon = space(b, name_end);
        if b.get(colon) != Some(&b':') {
            return None;
        }
        let at = space(b, colon + 1);
        let end = member(j + 1..name_end - 1, escaped, at)?;
        let next = space(b, end);
        compact &= colon == name_end && at == colon + 1 && next == end;
        match *b.get(next)? {
            b',' => {
                j = space(b, next + 1);
                compact &= j == next + 1;
            }
            b'}' => return Some((next + 1, compact)),
            _ => return None,
        }
    }
}

/// The end of the array whose `[` is at `i`, with `depth` arrays and objects around it.
fn array(b: &[u8], i: usize, depth: u32) -> Option<usize> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let mut j = space(b, i + 1);
    if b.get(j) == Some(&b']') {
        return Some(j + 1);
    }
    loop {
        let end = value(b, j, depth + 1)?;
        let next = space(b, end);
        match *b.get(next)? {
            b',' => j = space(b, next + 1),
            b']' => return Some(next + 1),
            _ => return None,
        }
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// The end of the number at `i`: `-`? (`0` | a digit 1–9 and more digits), then `.` and
/// digits, then `e` or `E`, a sign and digits, each part as JSON has it.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Whether `text` is one JSON value, with whitespace around it at most.
#[cfg(test)]
pub(super) fn is_json(text: &str) -> bool {
    let b = text.as_bytes();
    let at = space(b, 0);
    value(b, at, 0).is_some_and(|end| space(b, end) == b.len())
}

#[cfg(test)]
mod tests;
