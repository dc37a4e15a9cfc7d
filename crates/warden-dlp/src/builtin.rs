//! The built-in detectors: pattern, prefilter trigger, validator and canonical form.
//!
//! Patterns are ASCII-only (`(?-u)`) byte regexes over normalised text. They are listed from the
//! most specific to the most generic: when two matches start at the same place, the earlier
//! detector wins.

use crate::shape::Shape;

/// What must be present in a string before a detector's regex runs, and where around it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Trigger {
    /// A run of digits (with separators) that has the digit shape the detector needs; the
    /// regex runs in a window around it.
    Digits(Shape),
    /// An `@`.
    At,
    /// One of these words; the regex runs from `back` bytes before a hit to `reach` bytes after
    /// it. With `fold`, a word also matches in lower case, UPPER case and Capitalised.
    Keywords {
        words: &'static [&'static str],
        back: usize,
        reach: usize,
        fold: bool,
    },
}

/// The check after the regex, and how the value is made canonical for pseudonyms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    None,
    Card,
    Iban,
    Ssn,
    Ipv4,
    Phone,
    Email,
    /// Not glued to more token characters on either side.
    Token,
    /// A connection-string password that is not a placeholder.
    Password,
    /// High entropy, and not glued to more token characters.
    Entropy,
    Luhn,
    Mod97,
}

impl Check {
    /// Number-like values: separators inside are ignored, and a match that fails validation is
    /// retried without its trailing groups (a card followed by a year).
    pub(crate) fn numeric(self) -> bool {
        matches!(
            self,
            Check::Card | Check::Iban | Check::Phone | Check::Luhn | Check::Mod97
        )
    }
}

/// One built-in detector.
#[derive(Debug)]
pub(crate) struct Spec {
    pub id: &'static str,
    pub pattern: &'static str,
    pub trigger: Trigger,
    pub check: Check,
}

/// Exact prefixes; `reach` covers the longest match after the prefix.
const fn kw(words: &'static [&'static str], reach: usize) -> Trigger {
    Trigger::Keywords {
        words,
        back: 32,
        reach,
        fold: false,
    }
}

/// Key words in any of the usual casings.
const fn folded(words: &'static [&'static str], reach: usize) -> Trigger {
    Trigger::Keywords {
        words,
        back: 32,
        reach,
        fold: true,
    }
}

/// Ids of the built-in detectors, most specific first.
pub const BUILTIN_DETECTORS: &[&str] = &[
    "private_key",
    "jwt",
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "gitlab_token",
    "slack_token",
    "slack_webhook",
    "stripe_key",
    "anthropic_key",
    "openai_key",
    "google_api_key",
    "connection_password",
    "card",
    "iban",
    "ssn",
    "ipv4",
    "email",
    "phone",
    "secret_entropy",
];

/// The built-in detectors that find secrets (keys, tokens, passwords) rather than personal data:
/// every one but `card`, `iban`, `ssn`, `ipv4`, `email` and `phone`.
pub fn is_secret_detector(id: &str) -> bool {
    BUILTIN_DETECTORS.contains(&id)
        && !matches!(id, "card" | "iban" | "ssn" | "ipv4" | "email" | "phone")
}

pub(crate) const SPECS: &[Spec] = &[
    Spec {
        id: "private_key",
        pattern: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?s:.)*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        trigger: Trigger::Keywords {
            words: &["-----BEGIN"],
            back: 0,
            reach: 16 * 1024,
            fold: false,
        },
        check: Check::None,
    },
    Spec {
        id: "jwt",
        pattern: r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        trigger: kw(&["eyJ"], 64),
        check: Check::Token,
    },
    Spec {
        id: "aws_access_key",
        pattern: r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16}",
        trigger: kw(
            &[
                "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA",
                "APKA",
            ],
            20,
        ),
        check: Check::Token,
    },
    Spec {
        id: "aws_secret_key",
        pattern: r#"(?i:aws_?secret_?(?:access_?)?key|secretaccesskey)["']?\s*[:=]>?\s*["']?([A-Za-z0-9/+]{40})"#,
        trigger: folded(&["secret"], 96),
        check: Check::Token,
    },
    Spec {
        id: "github_token",
        pattern: r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        trigger: kw(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"], 96),
        check: Check::Token,
    },
    Spec {
        id: "gitlab_token",
        pattern: r"glpat-[A-Za-z0-9_-]{20,64}",
        trigger: kw(&["glpat-"], 72),
        check: Check::Token,
    },
    Spec {
        id: "slack_token",
        pattern: r"xox[abpsre]-[A-Za-z0-9-]{10,250}",
        trigger: kw(&["xox"], 260),
        check: Check::Token,
    },
    Spec {
        id: "slack_webhook",
        pattern: r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32}",
        trigger: kw(&["hooks.slack.com"], 96),
        check: Check::Token,
    },
    Spec {
        id: "stripe_key",
        pattern: r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}",
        trigger: kw(&["sk_live_", "sk_test_", "rk_live_", "rk_test_"], 256),
        check: Check::Token,
    },
    Spec {
        id: "anthropic_key",
        pattern: r"sk-ant-(?:api|admin|oat)[0-9]{2}-[A-Za-z0-9_-]{32,128}",
        trigger: kw(&["sk-ant-"], 160),
        check: Check::Token,
    },
    Spec {
        id: "openai_key",
        pattern: r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,200}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
        trigger: kw(&["sk-proj-", "sk-svcacct-", "sk-admin-", "T3BlbkFJ"], 210),
        check: Check::Token,
    },
    Spec {
        id: "google_api_key",
        pattern: r"AIza[0-9A-Za-z_-]{35}",
        trigger: kw(&["AIza"], 40),
        check: Check::Token,
    },
    Spec {
        id: "connection_password",
        pattern: r#"[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@'"]{1,128}:([^\s@/'"]{1,128})@|(?i:\b(?:password|pwd)\s*=\s*)([^;\s'"]{1,128});"#,
        trigger: folded(&["://", "passw", "pwd"], 280),
        check: Check::Password,
    },
    Spec {
        id: "card",
        pattern: r"\b(?:[0-9][ .-]?){12,18}[0-9]\b",
        trigger: Trigger::Digits(Shape::Card),
        check: Check::Card,
    },
    Spec {
        id: "iban",
        pattern: r"\b[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]){11,30}\b",
        trigger: Trigger::Digits(Shape::Iban),
        check: Check::Iban,
    },
    Spec {
        id: "ssn",
        pattern: r"\b[0-9]{3}[ .-][0-9]{2}[ .-][0-9]{4}\b",
        trigger: Trigger::Digits(Shape::Ssn),
        check: Check::Ssn,
    },
    Spec {
        id: "ipv4",
        pattern: r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b",
        trigger: Trigger::Digits(Shape::Ipv4),
        check: Check::Ipv4,
    },
    Spec {
        id: "email",
        pattern: r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b",
        trigger: Trigger::At,
        check: Check::Email,
    },
    Spec {
        id: "phone",
        pattern: r"\B\+[0-9]{1,3}[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,4})(?:[ .-]?[0-9]{2,4}){2,4}\b|\B\([0-9]{3}\)[ .-]?[0-9]{3}[ .-][0-9]{4}\b|\b[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}\b",
        trigger: Trigger::Digits(Shape::Phone),
        check: Check::Phone,
    },
    Spec {
        id: "secret_entropy",
        pattern: r#"(?i:secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|passw(?:or)?d|credential)[A-Za-z0-9_-]{0,20}["']?\s*[:=]\s*["']?([A-Za-z0-9+/=_.~-]{16,128})"#,
        trigger: folded(
            &["secret", "token", "passw", "pwd", "credential", "key"],
            180,
        ),
        check: Check::Entropy,
    },
];

/// The built-in detector named `id`.
pub(crate) fn spec(id: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_specs_agree() {
        let ids: Vec<&str> = SPECS.iter().map(|s| s.id).collect();
        assert_eq!(ids, BUILTIN_DETECTORS);
    }
}
