//! Which number-like detectors can match in a window at all, from the shape of its digit groups.
//!
//! The prefilter notes every digit run it passes (digits joined by at most two separators). One
//! pass over a run splits it into digit groups (maximal runs of ASCII digits) and chains of
//! groups joined by exactly one of ` .-`; such a chain never leaves its run. Each built-in
//! number-like pattern needs a shape that its every match has, so a detector whose shape is in
//! no run of a window is skipped there without running its regex. This is exact (no match is
//! lost): a match's groups lie in the runs that overlap its window, and a run's shapes are
//! never fewer than those of the part of it a window holds:
//!
//! - card: a chain of 13 digits or more;
//! - IBAN: two upper-case letters right before a group of two digits or more;
//! - SSN: chained groups of exactly 3, 2 and 4 digits;
//! - IPv4: four groups of 1–3 digits joined by dots;
//! - phone: `+` or `(` right before a group, or groups of exactly 3, 3 and 4 digits joined by
//!   `.` or `-`.

use std::ops::Range;

/// The digit shape a number-like built-in detector needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Card,
    Iban,
    Ssn,
    Ipv4,
    Phone,
}

impl Shape {
    pub(crate) const ALL: [Shape; 5] = [
        Shape::Card,
        Shape::Iban,
        Shape::Ssn,
        Shape::Ipv4,
        Shape::Phone,
    ];

    /// This shape's bit in the set [`shapes`] returns.
    pub(crate) fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A digit group: its length and the separator joining it to the previous group, if any.
#[derive(Clone, Copy, Default)]
struct Group {
    len: usize,
    link: Option<u8>,
}

/// The set of shapes (bits of [`Shape::bit`]) of the digit groups in `hay[range]`. The bytes
/// right before a group are looked at even when they lie before the range, so the set for a
/// range is never smaller than for a window that cuts it.
pub(crate) fn shapes(hay: &[u8], range: Range<usize>) -> u8 {
    let all = Shape::ALL.iter().fold(0, |m, s| m | s.bit());
    let mut found = 0;
    // The two groups before the current one in its chain, the digits in the chain, and how many
    // groups of at most three digits end the chain joined by dots.
    let mut history: [Option<Group>; 2] = [None, None];
    let (mut chain, mut dotted) = (0, 0);
    let mut last_end: Option<usize> = None;
    let (mut i, stop) = (range.start, range.end.min(hay.len()));
    while i < stop {
        if !hay[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < stop && hay[i].is_ascii_digit() {
            i += 1;
        }
        let len = i - start;
        let link = match last_end {
            Some(end) if end + 1 == start && matches!(hay[end], b' ' | b'.' | b'-') => {
                Some(hay[end])
            }
            _ => None,
        };
        if link.is_none() {
            history = [None, None];
            chain = 0;
        }
        chain += len;
        dotted = match (len <= 3, link) {
            (false, _) => 0,
            (true, Some(b'.')) => dotted + 1,
            (true, _) => 1,
        };
        if chain >= 13 {
            found |= Shape::Card.bit();
        }
        if dotted >= 4 {
            found |= Shape::Ipv4.bit();
        }
        if let [Some(a), Some(b)] = history
            && link.is_some()
            && b.link.is_some()
        {
            if (a.len, b.len, len) == (3, 2, 4) {
                found |= Shape::Ssn.bit();
            }
            let dash_or_dot = |l: Option<u8>| matches!(l, Some(b'.' | b'-'));
            if (a.len, b.len, len) == (3, 3, 4) && dash_or_dot(link) && dash_or_dot(b.link) {
                found |= Shape::Phone.bit();
            }
        }
        if start >= 1 && matches!(hay[start - 1], b'+' | b'(') {
            found |= Shape::Phone.bit();
        }
        if len >= 2
            && start >= 2
            && hay[start - 1].is_ascii_uppercase()
            && hay[start - 2].is_ascii_uppercase()
        {
            found |= Shape::Iban.bit();
        }
        if found == all {
            break;
        }
        history = [history[1], Some(Group { len, link })];
        last_end = Some(i);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(text: &str, shape: Shape) -> bool {
        shapes(text.as_bytes(), 0..text.len()) & shape.bit() != 0
    }

    #[test]
    fn shapes_of_values() {
        assert!(has("card 4111 1111 1111 1111.", Shape::Card));
        assert!(!has("2026-12-02T06:00:00Z", Shape::Card));
        assert!(has("x DE89 3704 0044 0532 0130 00", Shape::Iban));
        assert!(has("GB82WEST12345698765432", Shape::Iban));
        assert!(!has("2026-12-02T06:00:00Z INFO", Shape::Iban));
        assert!(has("ssn 219-09-9988", Shape::Ssn));
        assert!(!has("ssn 2190-09-9988 219-09-99", Shape::Ssn));
        assert!(has("from 192.168.10.20 x", Shape::Ipv4));
        assert!(!has("v1.2.3 and 1234.1.1.1", Shape::Ipv4));
        assert!(has("+44 20 7946 0958", Shape::Phone));
        assert!(has("(555) 123-4567", Shape::Phone));
        assert!(has("555.123.4567", Shape::Phone));
        assert!(!has("555 123 4567 and 219-09-9988", Shape::Phone));
    }
}
