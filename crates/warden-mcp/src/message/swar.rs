//! Eight bytes tested at once in a `u64` ("SIMD within a register"): for the short strings of a
//! message (names, methods, ids), where starting a vector search costs more than the string.
//!
//! Each test marks a byte by setting its high bit. The lowest marked byte is always exact; a
//! byte above a true mark may be marked falsely (a borrow runs on), so only the lowest mark of
//! a word is ever used, and so is the lowest of several tests OR-ed together.

/// `byte` in each of a word's eight bytes.
pub(super) const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The bytes of `word` that are zero.
pub(super) const fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(splat(1)) & !word & splat(0x80)
}

/// The bytes of `word` equal to `byte`.
pub(super) const fn equal(word: u64, byte: u8) -> u64 {
    zero_bytes(word ^ splat(byte))
}

/// The bytes of `word` below `n` (at most 0x80).
pub(super) const fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(splat(n)) & !word & splat(0x80)
}

/// The bytes of `word` that a JSON string must escape: a control character, `"` or `\\`.
pub(super) const fn escapes(word: u64) -> u64 {
    below(word, 0x20) | equal(word, b'"') | equal(word, b'\\')
}

/// The place (0–7) of the lowest marked byte, if any: bytes are loaded little-endian, so the
/// first byte of the text is the lowest of the word.
pub(super) fn first(marks: u64) -> Option<usize> {
    (marks != 0).then(|| marks.trailing_zeros() as usize / 8)
}

/// Eight bytes of `bytes` from `at` as a word (the caller checks there are eight).
pub(super) fn load(bytes: &[u8], at: usize) -> u64 {
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(eight)
}

/// Four bytes of `bytes` from `at` in the low half of a word, the high half zero (the caller
/// checks there are four, and masks the high half's marks away).
pub(super) fn load_four(bytes: &[u8], at: usize) -> u64 {
    let mut four = [0u8; 4];
    four.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(four))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_mark_is_exact_for_every_byte_and_place() {
        for b in 0..=255u8 {
            for k in 0..8 {
                for fill in [0u8, 0x1f, b'"', b'x', 0x80, 0xff] {
                    let mut eight = [fill; 8];
                    eight[k] = b;
                    let word = u64::from_le_bytes(eight);
                    let want = |hit: fn(u8) -> bool| eight.iter().position(|&c| hit(c));
                    assert_eq!(first(zero_bytes(word)), want(|c| c == 0));
                    assert_eq!(first(equal(word, b'"')), want(|c| c == b'"'));
                    assert_eq!(first(below(word, 0x20)), want(|c| c < 0x20));
                    let any = escapes(word);
                    assert_eq!(
                        first(any),
                        want(|c| c < 0x20 || c == b'"' || c == b'\\'),
                        "{eight:?}"
                    );
                }
            }
        }
    }
}
