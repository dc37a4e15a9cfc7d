//! Text normalisation before matching, with a map back to the original offsets.
//!
//! NFKC is applied per character (so `４１１１` becomes `4111` and `ﬁ` becomes `fi`), and
//! invisible characters are dropped, so that zero-width spaces or full-width digits do not hide a
//! value from the detectors.

use std::borrow::Cow;
use std::ops::Range;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// A normalised string and the way back to the original.
pub struct Normalised<'a> {
    text: Cow<'a, str>,
    /// For each byte of `text`: the original span of the character that produced it. Empty when
    /// `text` is the original.
    origin: Vec<(u32, u32)>,
}

/// Whether `c` is dropped before matching: soft hyphen, zero-width and bidi controls, word
/// joiners and invisible operators, the byte-order mark, and tag characters.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{E0000}'..='\u{E007F}')
}

/// Normalises `original`. Strings longer than 4 GiB are not normalised (offsets are 32-bit).
pub fn normalise(original: &str) -> Normalised<'_> {
    let unchanged = original.is_ascii()
        || original.len() > u32::MAX as usize
        || (!original.chars().any(is_invisible)
            && is_nfkc_quick(original.chars()) == IsNormalized::Yes);
    if unchanged {
        return Normalised {
            text: Cow::Borrowed(original),
            origin: Vec::new(),
        };
    }
    let mut text = String::with_capacity(original.len());
    let mut origin = Vec::with_capacity(original.len());
    let mut buf = [0u8; 4];
    for (at, c) in original.char_indices() {
        // Both fit in u32: the length was checked above.
        let span = (at as u32, (at + c.len_utf8()) as u32);
        if c.is_ascii() {
            text.push(c);
            origin.push(span);
        } else if !is_invisible(c) {
            for n in std::iter::once(c).nfkc() {
                text.push_str(n.encode_utf8(&mut buf));
                origin.extend(std::iter::repeat_n(span, n.len_utf8()));
            }
        }
    }
    Normalised {
        text: Cow::Owned(text),
        origin,
    }
}

impl Normalised<'_> {
    /// The text to match against.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The original span covered by the normalised span `r` (which must be non-empty and within
    /// the text). It starts at the first character that produced `r` and ends after the last.
    pub fn original_span(&self, r: Range<usize>) -> Range<usize> {
        if self.origin.is_empty() {
            return r;
        }
        let start = self.origin[r.start].0 as usize;
        let end = self.origin[r.end - 1].1 as usize;
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_borrowed() {
        let n = normalise("card 4111");
        assert!(matches!(n.text, Cow::Borrowed(_)));
        assert_eq!(n.original_span(5..9), 5..9);
    }

    #[test]
    fn drops_invisible_and_maps_back() {
        let s = "a4\u{200B}1\u{FEFF}1b";
        let n = normalise(s);
        assert_eq!(n.text(), "a411b");
        let span = n.original_span(1..4);
        assert_eq!(&s[span], "4\u{200B}1\u{FEFF}1");
    }

    #[test]
    fn full_width_digits_become_ascii() {
        let s = "x\u{FF14}\u{FF11}y";
        let n = normalise(s);
        assert_eq!(n.text(), "x41y");
        assert_eq!(&s[n.original_span(1..3)], "\u{FF14}\u{FF11}");
    }

    #[test]
    fn tags_and_bidi_are_dropped() {
        let n = normalise("a\u{E0041}\u{202E}b\u{00AD}c");
        assert_eq!(n.text(), "abc");
    }
}
