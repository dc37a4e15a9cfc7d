//! Validators: checks a regex match must pass before it is a finding.

/// The Luhn checksum over the ASCII digits of `s` (other bytes are ignored). Needs at least two
/// digits.
pub fn luhn(s: &str) -> bool {
    luhn_over(s.bytes().filter(u8::is_ascii_digit))
}

/// The Luhn checksum over ASCII digits.
fn luhn_over(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for d in digits.rev().map(|b| u32::from(b - b'0')) {
        sum += if !count.is_multiple_of(2) {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            d
        };
        count += 1;
    }
    count >= 2 && sum.is_multiple_of(10)
}

/// The ISO 7064 mod-97 check used by IBANs over the ASCII letters and digits of `s` (spaces and
/// dashes ignored): the first four characters move to the end, letters count as 10–35, and the
/// number must be 1 modulo 97. Needs 5 to 34 characters.
pub fn mod97(s: &str) -> bool {
    let chars = || s.bytes().filter(u8::is_ascii_alphanumeric);
    if !(5..=34).contains(&chars().count()) {
        return false;
    }
    let mut rem = 0u32;
    for b in chars().skip(4).chain(chars().take(4)) {
        let b = b.to_ascii_uppercase();
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The digits of `s`.
pub(crate) fn digits(s: &str) -> String {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(char::from)
        .collect()
}

/// The ASCII digits of a number-like match, kept on the stack: the first [`Digits::MAX`] of
/// them, and how many there are in all (a validator refuses a longer number anyway).
struct Digits {
    first: [u8; Digits::MAX],
    count: usize,
}

impl Digits {
    const MAX: usize = 24;

    fn of(s: &str) -> Digits {
        let mut d = Digits {
            first: [0; Digits::MAX],
            count: 0,
        };
        for b in s.bytes().filter(u8::is_ascii_digit) {
            if let Some(slot) = d.first.get_mut(d.count) {
                *slot = b;
            }
            d.count += 1;
        }
        d
    }

    /// The digits, if there are no more than [`Digits::MAX`].
    fn all(&self) -> Option<&[u8]> {
        self.first.get(..self.count)
    }
}

/// A payment card number: 13–19 digits, a major-network first digit (2–6), Luhn.
pub(crate) fn card(s: &str) -> bool {
    let d = Digits::of(s);
    d.all().is_some_and(|d| {
        (13..=19).contains(&d.len()) && matches!(d[0], b'2'..=b'6') && luhn_over(d.iter().copied())
    })
}

/// An IBAN: a country code, two check digits, 11–30 more letters or digits, mod-97.
pub(crate) fn iban(s: &str) -> bool {
    let n = s.bytes().filter(u8::is_ascii_alphanumeric).count();
    (15..=34).contains(&n) && mod97(s)
}

/// A US social security number outside the never-issued ranges: area 000, 666 and 900–999,
/// group 00, serial 0000.
pub(crate) fn ssn(s: &str) -> bool {
    let d = Digits::of(s);
    let Some(d) = d.all().filter(|d| d.len() == 9) else {
        return false;
    };
    let area = d[..3].iter().fold(0, |n, &b| n * 10 + u32::from(b - b'0'));
    area != 0 && area != 666 && area < 900 && d[3..5] != *b"00" && d[5..] != *b"0000"
}

/// A dotted-quad IPv4 address with octets 0–255 and no leading zeros.
pub(crate) fn ipv4(s: &str) -> bool {
    let mut parts = 0;
    s.split('.').all(|p| {
        parts += 1;
        parts <= 4
            && !p.is_empty()
            && p.len() <= 3
            && !(p.len() > 1 && p.starts_with('0'))
            && p.parse::<u16>().is_ok_and(|v| v <= 255)
    }) && parts == 4
}

/// A phone number: 8 to 15 digits (E.164), not all the same digit.
pub(crate) fn phone(s: &str) -> bool {
    let d = Digits::of(s);
    d.all()
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.iter().any(|&b| b != d[0]))
}

/// Shannon entropy of `s` in bits per byte.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A secret next to a key word: at least 16 characters, at least three of lower case, upper
/// case, digits and symbols (so `YOUR_API_KEY_HERE` and `my-secret-name` are not secrets), and
/// at least 3.5 bits of entropy per character.
pub(crate) fn high_entropy(s: &str) -> bool {
    let b = s.as_bytes();
    let classes = [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
        b.iter().any(|c| !c.is_ascii_alphanumeric()),
    ];
    s.len() >= 16 && classes.iter().filter(|&&c| c).count() >= 3 && entropy(s) >= 3.5
}

/// A password in a connection string, unless it is a placeholder (`${DB_PASSWORD}`, `<pass>`,
/// `****`).
pub(crate) fn password(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && !matches!(b[0], b'$' | b'%' | b'{' | b'<' | b'[')
        && b.iter().any(|&c| c != b[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("5555555555554444"));
        assert!(luhn("378282246310005"));
        assert!(luhn("79927398713"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("1234567812345678"));
        assert!(!luhn("0"));
    }

    #[test]
    fn mod97_known_values() {
        assert!(mod97("DE89370400440532013000"));
        assert!(mod97("GB82 WEST 1234 5698 7654 32"));
        assert!(mod97("NL91ABNA0417164300"));
        assert!(!mod97("DE88370400440532013000"));
        assert!(!mod97("GB82 WEST 1234 5698 7654 33"));
        assert!(!mod97("DE89"));
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn("123-45-6789"));
        assert!(!ssn("000-12-3456"));
        assert!(!ssn("666-12-3456"));
        assert!(!ssn("912-12-3456"));
        assert!(!ssn("123-00-4567"));
        assert!(!ssn("123-45-0000"));
    }

    #[test]
    fn ipv4_octets() {
        assert!(ipv4("192.168.1.20"));
        assert!(ipv4("0.0.0.0"));
        assert!(!ipv4("256.1.1.1"));
        assert!(!ipv4("01.2.3.4"));
        assert!(!ipv4("1.2.3"));
        assert!(!ipv4("1.2.3.4.5"));
        assert!(!ipv4("1..3.4"));
    }

    #[test]
    fn cards_by_length_network_and_checksum() {
        assert!(card("4111 1111 1111 1111"));
        assert!(card("4222222222222")); // 13 digits
        assert!(card("6011-1111-1111-1117"));
        // Luhn-valid, yet 12 and 20 digits long.
        for too_short_or_long in ["411111111117", "41111111111111111115"] {
            assert!(luhn(too_short_or_long), "{too_short_or_long}");
            assert!(!card(too_short_or_long), "{too_short_or_long}");
        }
        assert!(!card("4111111111111111112")); // 19 digits, Luhn fails
        assert!(card("4111111111111111110")); // 19 digits, Luhn-valid
        assert!(!card("1111111111111117")); // network digit 1
        assert!(!card(&"4".repeat(40)));
    }

    #[test]
    fn the_checksum_over_digits_is_luhn() {
        let mut n: u64 = 0x2545_F491;
        for _ in 0..5000 {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let digits = (n >> 11).to_string();
            let digits = &digits[..(n % 19 + 1).min(digits.len() as u64) as usize];
            assert_eq!(luhn_over(digits.bytes()), luhn(digits), "{digits}");
        }
    }

    #[test]
    fn phones_by_length_and_variety() {
        assert!(phone("+44 20 7946 0958"));
        assert!(phone("(555) 123-4567"));
        assert!(!phone("1234567")); // 7 digits
        assert!(!phone("1234567890123456")); // 16 digits
        assert!(!phone("5555555555"));
        assert!(!phone(&"12".repeat(20)));
    }

    #[test]
    fn entropy_separates_secrets_from_words() {
        assert!(high_entropy("Zx9vQ2mT7rLp4sKd8wBn"));
        assert!(!high_entropy("YOUR_API_KEY_HERE_PLEASE"));
        assert!(!high_entropy("aaaaaaaaaaaaaaaaaaaaaaaa"));
    }
}
