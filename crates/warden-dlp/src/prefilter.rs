//! The cheap first pass: which windows of a string can hold a match at all.
//!
//! One loop over the bytes finds runs of digits (for the number-like detectors, each only where
//! its digit shape is in a run: see [`crate::shape`]) and `@` (for e-mail); one Aho-Corasick
//! automaton finds key words. Each candidate becomes a window around it,
//! widened to the ends of the tokens they touch so that `\b` means inside the window what it means in the
//! whole string; overlapping windows are merged. Text with no candidate yields no window.

use crate::shape::{self, Shape};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::ops::Range;

/// How far around a digit run the regexes look (an IBAN's `GB82 WEST ` before its first long
/// run, and letter groups after it).
const DIGITS_BACK: usize = 16;
const DIGITS_AHEAD: usize = 32;
/// The longest local part and domain of an e-mail address.
const LOCAL_MAX: usize = 64;
const DOMAIN_MAX: usize = 253;

/// A set of detectors, one bit per detector index (an engine has at most 128).
pub(crate) type Detectors = u128;

/// A window of text and the detectors whose triggers occur in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) range: Range<usize>,
    pub(crate) detectors: Detectors,
}

/// A key word for [`Prefilter::new`].
pub(crate) struct Keyword {
    pub(crate) word: String,
    /// Bytes looked at before and after a hit.
    pub(crate) back: usize,
    pub(crate) reach: usize,
    /// Also match lower case, UPPER case and Capitalised.
    pub(crate) fold: bool,
    pub(crate) detectors: Detectors,
}

pub(crate) struct Prefilter {
    keywords: Option<AhoCorasick>,
    /// For each automaton pattern: bytes looked at before and after a hit, and its detectors.
    around: Vec<(usize, usize, Detectors)>,
    /// The number-like detectors, and for each digit shape (bit of [`Shape::bit`]) those that
    /// need it.
    digits: Detectors,
    shaped: [(u8, Detectors); Shape::ALL.len()],
    at: Detectors,
    /// Detectors without a trigger: the whole string is their window.
    always: Detectors,
}

impl Prefilter {
    /// Duplicate words keep the widest window and all their detectors. Folded words are looked
    /// for in lower case, UPPER case and Capitalised, so that every word stays a plain literal and
    /// the automaton can use its SIMD prefilter.
    pub(crate) fn new(
        keywords: Vec<Keyword>,
        shaped: [(Shape, Detectors); Shape::ALL.len()],
        at: Detectors,
        always: Detectors,
    ) -> Result<Prefilter, String> {
        let mut words: Vec<String> = Vec::new();
        let mut around: Vec<(usize, usize, Detectors)> = Vec::new();
        for Keyword {
            word,
            back,
            reach,
            fold,
            detectors,
        } in keywords
        {
            let variants = if fold {
                let lower = word.to_ascii_lowercase();
                let mut capital = lower.clone();
                if let Some(first) = capital.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                vec![word.to_ascii_uppercase(), capital, lower]
            } else {
                vec![word]
            };
            for word in variants {
                match words.iter().position(|w| *w == word) {
                    Some(i) => {
                        let (b, r, d) = around[i];
                        around[i] = (b.max(back), r.max(reach), d | detectors);
                    }
                    None => {
                        words.push(word);
                        around.push((back, reach, detectors));
                    }
                }
            }
        }
        let keywords = if words.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&words)
                .map_err(|e| e.to_string())?;
            Some(ac)
        };
        Ok(Prefilter {
            keywords,
            around,
            digits: shaped.iter().fold(0, |m, (_, d)| m | d),
            shaped: shaped.map(|(shape, d)| (shape.bit(), d)),
            at,
            always,
        })
    }

    /// The merged, sorted windows of `text` worth running regexes on, each with the detectors
    /// triggered in it.
    pub(crate) fn windows(&self, text: &[u8]) -> Vec<Window> {
        let mut raw: Vec<(usize, usize, Detectors)> = Vec::new();
        if self.always != 0 && !text.is_empty() {
            raw.push((0, text.len(), self.always));
        }
        if self.digits != 0 || self.at != 0 {
            self.scan_bytes(text, &mut raw);
        }
        if let Some(ac) = &self.keywords {
            // Non-overlapping hits are enough: a keyword inside another one (`secret` in
            // `aws_secret`) lies in the same window, and the regex set looks at every detector.
            for m in ac.find_iter(text) {
                let (back, reach, detectors) = self.around[m.pattern().as_usize()];
                raw.push((
                    m.start().saturating_sub(back),
                    m.end().saturating_add(reach),
                    detectors,
                ));
            }
        }
        merge(text, raw)
    }

    fn scan_bytes(&self, text: &[u8], raw: &mut Vec<(usize, usize, Detectors)>) {
        let mut i = 0;
        // Jump to the next digit or `@`, sixteen bytes at a time (prose and most code are
        // skipped here).
        while let Some(at) = next_interesting(&text[i..]) {
            i += at;
            if text[i] == b'@' {
                if self.at != 0 {
                    let (start, end) = address_around(text, i);
                    raw.push((start, end, self.at));
                }
                i += 1;
                continue;
            }
            let run = Run::at(text, i);
            i = run.end;
            if self.digits != 0 && may_have_shape(text, &run) {
                self.shaped(text, &run, raw);
            }
        }
    }

    /// A window around a digit run for the detectors whose digit shape it has, if any.
    fn shaped(&self, text: &[u8], run: &Run, raw: &mut Vec<(usize, usize, Detectors)>) {
        let found = shape::shapes(text, run.start..run.last + 1);
        let detectors = self
            .shaped
            .iter()
            .filter(|(bit, _)| found & bit != 0)
            .fold(0, |m, (_, d)| m | d);
        if detectors != 0 {
            let (start, end) = (
                run.start.saturating_sub(DIGITS_BACK),
                run.last + 1 + DIGITS_AHEAD,
            );
            raw.push((start, end, detectors));
        }
    }
}

/// Whether [`shape::shapes`] can find anything in `run`: the least each shape needs. Cards,
/// SSNs and 3-3-4 phone numbers need nine digits or more, IPv4 addresses three dots; otherwise
/// only a group right after `+` or `(`, or two upper-case letters before the first group
/// (letters end a run, so they never stand before a later one). Most numbers in logs and prose
/// (dates, times, counts) have none of these, and are not looked at again.
fn may_have_shape(text: &[u8], run: &Run) -> bool {
    if run.digits >= 9 || (run.dots >= 3 && run.digits >= 4) || run.opener {
        return true;
    }
    let before = &text[run.start.saturating_sub(2)..run.start];
    let iban = before.len() == 2
        && before.iter().all(u8::is_ascii_uppercase)
        && text.get(run.start + 1).is_some_and(u8::is_ascii_digit);
    iban || before.last().is_some_and(|b| matches!(b, b'+' | b'('))
}

/// The offset of the first digit or `@` in `text`. Sixteen bytes are tested at a time, written
/// so that the compiler makes one vector comparison of them; the word test below then tells
/// which byte it was.
fn next_interesting(text: &[u8]) -> Option<usize> {
    let mut chunks = text.chunks_exact(16);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut sixteen = [0u8; 16];
        sixteen.copy_from_slice(chunk);
        if sixteen.iter().fold(false, |any, &b| any | interesting(b)) {
            // Read from `chunk`, not `sixteen`: with both uses of one array the compiler no
            // longer makes the test above a vector one.
            let word = |k: usize| {
                let mut eight = [0u8; 8];
                eight.copy_from_slice(&chunk[k..k + 8]);
                interesting_bytes(u64::from_le_bytes(eight))
            };
            let low = word(0);
            let found = if low != 0 {
                low.trailing_zeros() / 8
            } else {
                8 + word(8).trailing_zeros() / 8
            };
            return Some(at + found as usize);
        }
        at += 16;
    }
    let rest = chunks.remainder();
    rest.iter().position(|&b| interesting(b)).map(|k| at + k)
}

/// The top bit of each byte of `x` that is a digit or `@`, and no other bit.
fn interesting_bytes(x: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const TOPS: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7F;
    // Bytes strictly between `0x2F` and `0x3A`, and bytes equal to `@` (zero after the xor),
    // each test exact per byte (no carry crosses a byte: every sum stays below 0x100).
    let low = x & LOW7;
    let digits = (ONES * (127 + 0x3A) - low) & !x & (low + ONES * (127 - 0x2F)) & TOPS;
    let y = x ^ (ONES * u64::from(b'@'));
    let at = !(((y & LOW7) + LOW7) | y) & TOPS;
    digits | at
}

/// A digit or `@` (without branches, so that sixteen tests are one vector comparison).
fn interesting(b: u8) -> bool {
    (b.wrapping_sub(b'0') < 10) | (b == b'@')
}

/// A run of digits joined by at most two separators in a row.
struct Run {
    start: usize,
    last: usize,
    /// Where the walk stopped: after the run and at most two separators that follow it.
    end: usize,
    digits: usize,
    /// Dots among its separators (those after it included), and whether `+` or `(` is one of
    /// them.
    dots: usize,
    opener: bool,
}

impl Run {
    /// The run that starts with the digit at `start`.
    fn at(text: &[u8], start: usize) -> Run {
        let mut run = Run {
            start,
            last: start,
            end: start,
            digits: 0,
            dots: 0,
            opener: false,
        };
        let mut i = start;
        loop {
            let digits = text[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            run.digits += digits;
            run.last = i + digits - 1;
            i += digits;
            let gap = text[i..]
                .iter()
                .take(2)
                .take_while(|&&b| matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+' | b'/'))
                .count();
            for &b in &text[i..i + gap] {
                run.dots += usize::from(b == b'.');
                run.opener |= matches!(b, b'+' | b'(');
            }
            i += gap;
            if !text.get(i).is_some_and(u8::is_ascii_digit) {
                run.end = i;
                return run;
            }
        }
    }
}

/// The bytes around the `@` at `at` that can belong to an e-mail address.
fn address_around(text: &[u8], at: usize) -> (usize, usize) {
    let local = |b: &u8| b.is_ascii_alphanumeric() || b"._%+-".contains(b);
    let domain = |b: &u8| b.is_ascii_alphanumeric() || b".-".contains(b);
    let before = text[..at]
        .iter()
        .rev()
        .take(LOCAL_MAX)
        .take_while(|b| local(b))
        .count();
    let after = text[at + 1..]
        .iter()
        .take(DOMAIN_MAX)
        .take_while(|b| domain(b))
        .count();
    (at - before, at + 1 + after)
}

/// Bytes that extend a window: ASCII word bytes, the other bytes of tokens (`.-+/=`, so a
/// JWT or a base64 secret is never cut), and non-ASCII bytes (so a window never starts or ends
/// inside a character). A window is therefore bounded by bytes that are not word bytes, where
/// `\b` means the same in the window as in the whole string.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'+' | b'/' | b'=') || b >= 0x80
}

fn merge(text: &[u8], mut raw: Vec<(usize, usize, Detectors)>) -> Vec<Window> {
    raw.sort_unstable();
    let mut out: Vec<Window> = Vec::new();
    for (start, end, detectors) in raw {
        let mut start = start.min(text.len());
        let mut end = end.min(text.len());
        while start > 0 && is_word(text[start - 1]) {
            start -= 1;
        }
        while end < text.len() && is_word(text[end]) {
            end += 1;
        }
        match out.last_mut() {
            Some(last) if start <= last.range.end => {
                last.range.end = last.range.end.max(end);
                last.detectors |= detectors;
            }
            _ => out.push(Window {
                range: start..end,
                detectors,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf() -> Prefilter {
        let ghp = Keyword {
            word: "ghp_".into(),
            back: 0,
            reach: 10,
            fold: true,
            detectors: 1,
        };
        let cards = Shape::ALL.map(|s| (s, if s == Shape::Card { 2 } else { 0 }));
        Prefilter::new(vec![ghp], cards, 4, 0).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_word_test_finds_exactly_digits_and_at_signs() {
        for b in 0..=255u8 {
            for k in 0..8 {
                let mut word = [b'x'; 8];
                word[k] = b;
                let found = interesting_bytes(u64::from_le_bytes(word));
                let want = if interesting(b) { 0x80 << (8 * k) } else { 0 };
                assert_eq!(found, want, "byte {b:#x} at {k}");
            }
        }
        // Every place in and across the sixteen-byte steps, with a later one that must not win.
        for len in 0..50 {
            let mut text = vec![0xC3u8; len];
            assert_eq!(next_interesting(&text), None);
            for at in 0..len {
                for b in [b'@', b'5', b'0', b'9'] {
                    text[at] = b;
                    text[len - 1] = if at + 1 < len { b'7' } else { b };
                    assert_eq!(next_interesting(&text), Some(at), "{b} at {at} of {len}");
                }
                text.fill(0xC3);
            }
        }
    }

    /// Each digit shape as a detector of its own (its shape bit), and `@` as bit 7.
    fn by_shape() -> Prefilter {
        let each = Shape::ALL.map(|s| (s, Detectors::from(s.bit())));
        Prefilter::new(vec![], each, 1 << 7, 0).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The detectors each text's windows are tagged with: shapes after trailing separators, a
    /// run that ends at `@`, groups after `+` and `(`, and log numbers that have no shape.
    #[test]
    fn digit_runs_open_windows_for_their_shapes() {
        let (card, iban, ssn, ipv4, phone) = (1, 2, 4, 8, 16);
        for (text, want) in [
            ("from 10.24.8.17. to", vec![ipv4]),
            ("v1.2.3.4..5 and 1.2.3.4..", vec![ipv4]),
            ("call +44 20 7946 0958 now", vec![phone]),
            ("call (555) 123-4567 or 555(", vec![phone]),
            ("id 12+ 3 and 219-09-9988 ok", vec![ssn]),
            ("x 12345678901@example.com y", vec![1 << 7]),
            ("GB82 WEST 1234 5698 7654 32", vec![card | iban]),
            ("2026-12-02T08:00:00Z batch 8812 in 41 ms", vec![]),
        ] {
            let got: Vec<Detectors> = by_shape()
                .windows(text.as_bytes())
                .iter()
                .map(|w| w.detectors)
                .collect();
            assert_eq!(got, want, "{text}");
        }
        // A card number at every place around the sixteen-byte steps of the jump.
        for at in 0..40 {
            let text = format!("{}4111 1111 1111 1111 {}", "x ".repeat(at), "y".repeat(40));
            let w = by_shape().windows(text.as_bytes());
            assert_eq!(w.len(), 1, "{text}");
            assert!(w[0].range.start <= 2 * at && w[0].range.end >= 2 * at + 19);
            assert_eq!(w[0].detectors & card, card, "{text}");
        }
    }

    #[test]
    fn no_candidate_no_window() {
        assert!(pf().windows(b"lorem ipsum dolor sit amet 123").is_empty());
    }

    #[test]
    fn windows_end_on_word_boundaries() {
        let text = b"aaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb call 4111 1111 1111 1111 now";
        let w = pf().windows(text);
        assert_eq!(w.len(), 1);
        let r = w[0].range.clone();
        assert!(r.start == 0 || !is_word(text[r.start - 1]));
        assert!(text[r].ends_with(b"now"));
        assert_eq!(w[0].detectors, 2);
    }

    #[test]
    fn keywords_are_case_insensitive_and_merge() {
        let w = pf().windows(b"x GHP_abc ghp_def y                    a@b.co");
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].detectors, w[1].detectors), (1, 4));
    }
}
