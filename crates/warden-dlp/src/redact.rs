//! The replacement texts: masks and keyed pseudonyms.

use crate::builtin::Check;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `[card ••••1111]` for cards, `[<detector>]` otherwise.
pub(crate) fn mask(id: &str, check: Check, value: &str) -> String {
    let mut out = String::with_capacity(id.len() + 20);
    out.push('[');
    out.push_str(id);
    if check == Check::Card {
        out.push_str(" ••••");
        let (mut last4, mut n) = ([b'0'; 4], 0);
        for digit in value.bytes().rev().filter(u8::is_ascii_digit).take(4) {
            n += 1;
            last4[4 - n] = digit;
        }
        out.extend(last4[4 - n..].iter().map(|&d| char::from(d)));
    }
    out.push(']');
    out
}

/// `[<detector>:<8 hex>]`: the first four bytes of HMAC-SHA256(key, id ‖ 0 ‖ canonical value).
pub(crate) fn pseudonym(key: &[u8; 32], id: &str, check: Check, value: &str) -> String {
    let canonical = canonical(check, value);
    // A 32-byte key is always valid for HMAC, which accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return mask(id, check, value),
    };
    mac.update(id.as_bytes());
    mac.update(&[0]);
    mac.update(canonical.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("[{id}:{hex}]")
}

/// The same value written differently gives the same pseudonym: separators are dropped from
/// numbers, IBANs are upper-cased, e-mail addresses lower-cased.
fn canonical(check: Check, value: &str) -> String {
    match check {
        Check::Card | Check::Ssn | Check::Phone | Check::Luhn => crate::validate::digits(value),
        Check::Iban | Check::Mod97 => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        Check::Email => value.to_ascii_lowercase(),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_mask_keeps_last_four() {
        assert_eq!(
            mask("card", Check::Card, "4111 1111 1111 1111"),
            "[card ••••1111]"
        );
        assert_eq!(mask("email", Check::Email, "a@b.co"), "[email]");
    }

    #[test]
    fn pseudonyms_are_stable_and_keyed() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let a = pseudonym(&k1, "email", Check::Email, "Ann@Example.com");
        assert_eq!(a, pseudonym(&k1, "email", Check::Email, "ann@example.com"));
        assert_ne!(a, pseudonym(&k1, "email", Check::Email, "bob@example.com"));
        assert_ne!(a, pseudonym(&k2, "email", Check::Email, "ann@example.com"));
        assert!(a.starts_with("[email:") && a.len() == "[email:12345678]".len());
        assert_eq!(
            pseudonym(&k1, "card", Check::Card, "4111-1111-1111-1111"),
            pseudonym(&k1, "card", Check::Card, "4111 1111 1111 1111")
        );
    }
}
