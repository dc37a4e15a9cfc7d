//! Data-loss prevention for Warden: find personal data and secrets in tool traffic and mask,
//! pseudonymise, block or report them.
//!
//! The gateway builds one [`Engine`] from [`Rules`] and calls [`Engine::apply`] on every JSON value
//! that crosses it (tool results, and arguments against exfiltration). The engine visits every
//! string of the value, keeps its JSON path (`$.content[0].text`), and rewrites matches in place
//! without changing the value's structure or the type of any node. [`Engine::apply_json`] does the
//! same on the JSON text of a value, without building the value (a gateway holds most replies
//! as text): it rewrites only the spans with findings inside their string literals, and keeps
//! every other byte, escapes included. [`Engine::scan_text`] finds
//! what is in one string without rewriting.
//!
//! # What it must never do
//!
//! - **Return or log a found value.** A [`Finding`] holds the detector, the JSON path, the action
//!   and byte offsets — never the matched text; its `Debug` output is therefore safe too. Errors
//!   name the detector and the regex problem, never scanned text. The crate does no logging.
//! - **Reveal the pseudonym key.** [`Rules`] has a hand-written `Debug` that omits it.
//! - **Panic on input.** Every string is valid input; offsets always fall on char boundaries.
//!
//! # How a string is scanned
//!
//! 1. **Normalise** ([`normalise`]): NFKC (full-width digits become ASCII digits, ligatures are
//!    split), and invisible characters are dropped (U+00AD, U+200B–U+200F, U+202A–U+202E,
//!    U+2060–U+2064, U+2066–U+2069, U+FEFF, tags U+E0000–U+E007F). A map from normalised to
//!    original offsets makes every rewrite cover the right original span (the dropped characters
//!    inside a match are replaced with it). ASCII text that needs nothing is not copied.
//! 2. **Prefilter**: one pass over the bytes finds runs of digits (joined by spaces, dashes,
//!    dots, brackets) and `@` (skipping sixteen bytes at a time that hold neither); one
//!    Aho-Corasick automaton finds the detectors' key words (`AKIA`, `ghp_`, `-----BEGIN`,
//!    `password` …; key words match in lower case, UPPER case or Capitalised). A digit run is a
//!    candidate only for the number-like detectors whose digit shape it has (a chain of 13
//!    digits for cards, groups of 3, 2 and 4 digits for SSNs, four dotted groups for IPv4, two
//!    capitals before two digits for IBANs, a `+`, `(` or 3-3-4 groups for phones): an exact
//!    test, since every match has that shape, and one that drops most numbers in logs and
//!    prose (dates, times, counts); a run too short for any shape (fewer than nine digits, under
//!    three dots, no `+` or `(`, no capitals before it) is not even split into groups. Each candidate opens a window of text around it, tagged
//!    with the detectors it can start; windows are widened to token ends and merged. Text
//!    without a candidate is done here.
//! 3. **Regular expressions**: in a window with three candidate detectors or more, one compiled
//!    [`regex::bytes::RegexSet`] (of the number-like detectors, or of all) first rules out those
//!    that cannot match; each remaining detector's own regex gives positions (group 1 is the
//!    value when the pattern has groups; for the built-in patterns it is read from the match's
//!    bytes instead of the capturing engine). Number-like patterns accept spaces, dashes and dots
//!    between digits.
//! 4. **Validators**: Luhn and a 2–6 first digit for cards, ISO 13616 mod-97 for IBANs, SSN
//!    ranges, IPv4 octets (and not part of a longer dotted number), E.164 length for phones,
//!    token boundaries for keys, Shannon entropy and character classes for secrets next to key
//!    words, no placeholder for connection-string passwords. A number-like match that fails is
//!    retried without its trailing groups. Values in [`Rules::allow`] (compared after
//!    normalisation) are dropped. Overlaps keep the earliest match, then the more specific
//!    detector, then the longer match.
//!
//! # Performance
//!
//! `cargo bench -p warden-dlp --bench scan` prints MB/s on one core for a 1 MiB mixed corpus
//! (prose, code, logs, with findings on one line in 8 or one in 32) and 1 MiB without findings.
//! Text without candidates runs at memory-scan speed (above 1 GB/s); the cost grows with the
//! number of candidates, since each window is matched by regexes and validated.
//!
//! # Detectors
//!
//! See [`BUILTIN_DETECTORS`]: `email`, `phone`, `card`, `iban`, `ssn`, `ipv4`, `aws_access_key`,
//! `aws_secret_key`, `github_token`, `gitlab_token`, `slack_token`, `slack_webhook`,
//! `stripe_key`, `openai_key`, `anthropic_key`, `google_api_key`, `private_key`, `jwt`,
//! `connection_password`, `secret_entropy`; plus custom rules ([`CustomRule`]).
//!
//! # Rewrites
//!
//! - mask: `[card ••••1111]` for cards (last four digits kept), `[<detector>]` for everything
//!   else (`[email]`, `[iban]`, `[aws_secret_key]` …).
//! - pseudonymise: `[<detector>:<8 hex>]`, the first 4 bytes of
//!   HMAC-SHA256(key, detector ‖ 0x00 ‖ canonical value), where the canonical value is the
//!   normalised match with separators removed for number-like detectors and lower-cased for
//!   e-mail. Stable across calls and processes for one key; different values give different
//!   tokens (up to 32-bit collisions).
//! - block: the span is masked as above and [`Outcome::blocked`] is set; the caller drops the
//!   message.
//! - report: nothing is rewritten; the finding is returned.
//!
//! For `connection_password`, `aws_secret_key` and `secret_entropy` only the secret itself is
//! replaced: `postgres://app:[connection_password]@db`.
//!
//! # Honest limits (what is not caught)
//!
//! - Object **keys** are neither scanned nor rewritten (rewriting them would change the schema;
//!   the gateway should not let tools choose keys freely if that matters).
//! - Key words in other casings (`pAsSwOrD`) do not open a window for the detectors that need
//!   them (`secret_entropy`, `connection_password` in `Password=…;` form, `aws_secret_key`).
//! - IBANs are found in upper case only; cards only with a first digit 2–6 (Visa, Mastercard,
//!   Amex, Discover, JCB, UnionPay …) and 13–19 digits.
//! - Numbers stored as JSON numbers (not strings) are not scanned.
//! - Encoded data (base64, URL-encoding, hex, compression), values split across several strings,
//!   spelled-out digits ("four one one one"), and homoglyphs outside NFKC (Cyrillic `а`) evade it.
//! - Normalisation is per character: a combining accent is not composed with its base letter.
//! - Phones need an international `+` prefix or the North American `(555) 123-4567` /
//!   `555-123-4567` shapes; bare digit runs are not phones. SSNs need separators. IPv6 is not
//!   detected. Names, postal addresses and dates of birth are not detected.
//! - `secret_entropy` needs a key word before `:` or `=`; a lone random string is not a secret.
//! - A private-key block is found only when its `-----END …-----` line is within 16 KiB.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builtin;
mod engine;
mod json;
pub mod normalise;
mod prefilter;
mod raw;
mod redact;
mod shape;
pub mod validate;
mod value;

pub use builtin::{BUILTIN_DETECTORS, is_secret_detector};
pub use engine::Engine;
pub use raw::JsonOutcome;

/// What to do with a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Replace it with a placeholder naming its type (`[email]`, `[card ••••1111]`).
    Mask,
    /// Replace it with a keyed, stable token (`[email:3f9a1c2b]`).
    Pseudonymise,
    /// Mask it and mark the whole value as blocked.
    Block,
    /// Leave it and only report it.
    Report,
}

/// A check that a regex match must also pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validator {
    /// The digits of the match pass the Luhn checksum (payment cards).
    Luhn,
    /// The letters and digits of the match pass the ISO 7064 mod-97 check (IBAN).
    Mod97,
    /// No further check.
    None,
}

/// A detector defined in configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomRule {
    /// The pattern ([`regex`] syntax, matched against normalised text). If it has capture
    /// groups, the first group that took part is the value. With keywords it runs on windows of
    /// text, so `^` and `$` mean the window's ends there: do not rely on them.
    pub regex: String,
    /// Words that must occur near a match: the regex looks from 32 bytes before each word to 256
    /// bytes after it. A word is matched as written, in lower case, in UPPER case and
    /// Capitalised. Empty: the regex runs over all text, which is slower.
    pub keywords: Vec<String>,
    /// A check the match must pass.
    pub validator: Option<Validator>,
}

/// One enabled detector and its action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectorRule {
    /// A built-in detector (see [`BUILTIN_DETECTORS`]) or the name of a custom one.
    pub id: String,
    /// What to do with its matches.
    pub action: Action,
    /// The definition of a custom detector; `None` for a built-in one.
    pub custom: Option<CustomRule>,
}

/// Everything an [`Engine`] is built from.
#[derive(Clone)]
pub struct Rules {
    /// The enabled detectors.
    pub detectors: Vec<DetectorRule>,
    /// Exact values never reported, e.g. example keys from documentation.
    pub allow: Vec<String>,
    /// The HMAC key for pseudonyms. It never leaves the engine.
    pub pseudonym_key: [u8; 32],
}

impl Rules {
    /// Every built-in detector with action [`Action::Mask`] and an empty allow-list.
    pub fn builtin(pseudonym_key: [u8; 32]) -> Rules {
        let detectors = BUILTIN_DETECTORS
            .iter()
            .map(|id| DetectorRule {
                id: (*id).to_string(),
                action: Action::Mask,
                custom: None,
            })
            .collect();
        Rules {
            detectors,
            allow: Vec::new(),
            pseudonym_key,
        }
    }
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("detectors", &self.detectors)
            .field("allow", &format_args!("[{} values]", self.allow.len()))
            .field("pseudonym_key", &format_args!("<redacted>"))
            .finish()
    }
}

/// One match: where and what kind, never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The detector's id (`"card"`, `"email"` …).
    pub detector: String,
    /// The JSON path of the string (`$.content[0].text`); `$` for [`Engine::scan_text`].
    pub path: String,
    /// The action taken.
    pub action: Action,
    /// Byte offset of the match in the original string (before any rewrite).
    pub start: usize,
    /// Byte offset just past the match in the original string.
    pub end: usize,
}

/// The result of [`Engine::apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every match, in document order.
    pub findings: Vec<Finding>,
    /// Whether a detector with [`Action::Block`] matched: the caller must not pass the value on.
    pub blocked: bool,
}

/// Why an [`Engine`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule without `custom` names no built-in detector.
    #[error("detector `{id}` is not built in and has no custom rule")]
    UnknownDetector {
        /// The id given.
        id: String,
    },
    /// Two rules have the same id.
    #[error("detector `{id}` is configured twice")]
    DuplicateDetector {
        /// The id given twice.
        id: String,
    },
    /// A custom regex does not compile.
    #[error("custom detector `{id}`: invalid regex: {reason}")]
    BadRegex {
        /// The detector's id.
        id: String,
        /// The regex compiler's message (it quotes the pattern, not scanned text).
        reason: String,
    },
    /// A custom keyword is empty.
    #[error("custom detector `{id}`: empty keyword")]
    EmptyKeyword {
        /// The detector's id.
        id: String,
    },
    /// More detectors than one engine holds.
    #[error("{count} detectors configured; at most 128 are supported")]
    TooManyDetectors {
        /// The number configured.
        count: usize,
    },
    /// The combined keyword automaton or regex set could not be built.
    #[error("cannot build the detector set: {0}")]
    Build(String),
}
