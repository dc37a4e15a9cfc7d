//! Validators: checks a regex match must pass before it is a finding.

/// The Luhn checksum over the ASCII digits of `s` (other bytes are ignored). Needs at least two
/// digits.
pub fn luhn(s: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for d in s
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
    {
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
    let chars: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if !(5..=34).contains(&chars.len()) {
        return false;
    }
    let mut rem = 0u32;
    for &b in chars[4..].iter().chain(&chars[..4]) {
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

/// A payment card number: 13–19 digits, a major-network first digit (2–6), Luhn.
pub(crate) fn card(s: &str) -> bool {
    let d = digits(s);
    (13..=19).contains(&d.len()) && matches!(d.as_bytes()[0], b'2'..=b'6') && luhn(&d)
}

/// An IBAN: a country code, two check digits, 11–30 more letters or digits, mod-97.
pub(crate) fn iban(s: &str) -> bool {
    let n = s.bytes().filter(u8::is_ascii_alphanumeric).count();
    (15..=34).contains(&n) && mod97(s)
}

/// A US social security number outside the never-issued ranges: area 000, 666 and 900–999,
/// group 00, serial 0000.
pub(crate) fn ssn(s: &str) -> bool {
    let d = digits(s);
    let Ok(area) = d.get(0..3).unwrap_or("").parse::<u32>() else {
        return false;
    };
    d.len() == 9 && area != 0 && area != 666 && area < 900 && &d[3..5] != "00" && &d[5..] != "0000"
}

/// A dotted-quad IPv4 address with octets 0–255 and no leading zeros.
pub(crate) fn ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && !(p.len() > 1 && p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        })
}

/// A phone number: 8 to 15 digits (E.164), not all the same digit.
pub(crate) fn phone(s: &str) -> bool {
    let d = digits(s);
    (8..=15).contains(&d.len()) && d.bytes().any(|b| b != d.as_bytes()[0])
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
        assert!(!ipv4("256.1.1.1"));
        assert!(!ipv4("01.2.3.4"));
        assert!(!ipv4("1.2.3"));
    }

    #[test]
    fn entropy_separates_secrets_from_words() {
        assert!(high_entropy("Zx9vQ2mT7rLp4sKd8wBn"));
        assert!(!high_entropy("YOUR_API_KEY_HERE_PLEASE"));
        assert!(!high_entropy("aaaaaaaaaaaaaaaaaaaaaaaa"));
    }
}
