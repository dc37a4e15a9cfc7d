//! The engine: detectors compiled once, then prefilter → regex set → validators per string.

use crate::builtin::{self, Check, Trigger};
use crate::normalise::{Normalised, normalise};
use crate::prefilter::{Detectors, Keyword, Prefilter};
use crate::shape::Shape;
use crate::value::Value;
use crate::{Action, Error, Finding, Rules, Validator, redact, validate};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::collections::HashSet;

/// Keywords of custom rules: a match is looked for from this many bytes before a keyword …
const CUSTOM_BACK: usize = 32;
/// … to this many after it.
const CUSTOM_REACH: usize = 256;
const SIZE_LIMIT: usize = 64 * 1024 * 1024;
/// At most this many detectors in one engine (one bit each in a [`Detectors`] set).
const MAX_DETECTORS: usize = Detectors::BITS as usize;
/// A window with at least this many candidate detectors is first put to the regex set, which
/// rules out the detectors that cannot match in it with one scan.
const SET_GATE: u32 = 3;

pub(crate) struct Detector {
    pub(crate) id: String,
    pub(crate) action: Action,
    regex: Regex,
    value: Value,
    pub(crate) check: Check,
}

/// A compiled set of detectors. Build it once per configuration and share it (`Send + Sync`).
pub struct Engine {
    pub(crate) detectors: Vec<Detector>,
    /// Regex sets that rule detectors out of a window in one scan, smallest first: one for the
    /// detectors triggered by digits, one for all. Each with the detectors it covers, in order.
    sets: Vec<(Detectors, RegexSet, Vec<usize>)>,
    prefilter: Prefilter,
    allow: HashSet<String>,
    pub(crate) key: [u8; 32],
}

/// A validated match in normalised offsets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub(crate) detector: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

struct Compiled {
    rank: usize,
    id: String,
    action: Action,
    pattern: String,
    check: Check,
    trigger: Option<Trigger>,
    builtin: Option<&'static str>,
    keywords: Vec<String>,
}

impl Engine {
    /// Compiles `rules`. Fails on an unknown or duplicate detector id, an invalid custom regex or
    /// an empty keyword, naming the detector.
    pub fn new(rules: Rules) -> Result<Engine, Error> {
        let mut seen = HashSet::new();
        let mut compiled = Vec::new();
        if rules.detectors.len() > MAX_DETECTORS {
            return Err(Error::TooManyDetectors {
                count: rules.detectors.len(),
            });
        }
        for rule in rules.detectors {
            if !seen.insert(rule.id.clone()) {
                return Err(Error::DuplicateDetector { id: rule.id });
            }
            if let Some(custom) = rule.custom {
                if custom.keywords.iter().any(String::is_empty) {
                    return Err(Error::EmptyKeyword { id: rule.id });
                }
                let check = match custom.validator {
                    Some(Validator::Luhn) => Check::Luhn,
                    Some(Validator::Mod97) => Check::Mod97,
                    Some(Validator::None) | None => Check::None,
                };
                // Custom rules come first: the operator's own rule is the most specific.
                compiled.push(Compiled {
                    rank: 0,
                    id: rule.id,
                    action: rule.action,
                    pattern: custom.regex,
                    check,
                    trigger: None,
                    builtin: None,
                    keywords: custom.keywords,
                });
                continue;
            }
            let Some(spec) = builtin::spec(&rule.id) else {
                return Err(Error::UnknownDetector { id: rule.id });
            };
            let rank = 1 + builtin::SPECS
                .iter()
                .take_while(|s| s.id != spec.id)
                .count();
            compiled.push(Compiled {
                rank,
                id: rule.id,
                action: rule.action,
                pattern: format!("(?-u){}", spec.pattern),
                check: spec.check,
                trigger: Some(spec.trigger),
                builtin: Some(spec.id),
                keywords: Vec::new(),
            });
        }
        compiled.sort_by_key(|c| c.rank);

        let mut detectors = Vec::with_capacity(compiled.len());
        for c in &compiled {
            let regex = RegexBuilder::new(&c.pattern)
                .size_limit(SIZE_LIMIT)
                .build()
                .map_err(|e| Error::BadRegex {
                    id: c.id.clone(),
                    reason: e.to_string(),
                })?;
            detectors.push(Detector {
                id: c.id.clone(),
                action: c.action,
                value: Value::of(c.builtin, regex.captures_len() > 1),
                regex,
                check: c.check,
            });
        }
        let numeric: Vec<usize> = (0..compiled.len())
            .filter(|&i| matches!(compiled[i].trigger, Some(Trigger::Digits(_))))
            .collect();
        let mut sets = Vec::new();
        for members in [numeric, (0..compiled.len()).collect()] {
            let set = RegexSetBuilder::new(members.iter().map(|&i| compiled[i].pattern.as_str()))
                .size_limit(SIZE_LIMIT)
                .build()
                .map_err(|e| Error::Build(e.to_string()))?;
            let mask = members.iter().fold(0, |m, &i| m | 1 << i);
            sets.push((mask, set, members));
        }
        let prefilter = prefilter(&compiled)?;
        let allow = rules
            .allow
            .iter()
            .map(|a| normalise(a).text().to_string())
            .collect();
        Ok(Engine {
            detectors,
            sets,
            prefilter,
            allow,
            key: rules.pseudonym_key,
        })
    }

    /// The findings in one string, with path `$` and offsets into `text`. Nothing is rewritten.
    pub fn scan_text(&self, text: &str) -> Vec<Finding> {
        let norm = normalise(text);
        self.hits(norm.text())
            .into_iter()
            .map(|h| self.finding(&norm, h, "$"))
            .collect()
    }

    pub(crate) fn finding(&self, norm: &Normalised<'_>, hit: Hit, path: &str) -> Finding {
        let span = norm.original_span(hit.start..hit.end);
        let d = &self.detectors[hit.detector];
        Finding {
            detector: d.id.clone(),
            path: path.to_string(),
            action: d.action,
            start: span.start,
            end: span.end,
        }
    }

    /// The replacement for a hit whose action rewrites, `None` for [`Action::Report`].
    pub(crate) fn replacement(&self, norm: &str, hit: Hit) -> Option<String> {
        let d = &self.detectors[hit.detector];
        let value = &norm[hit.start..hit.end];
        match d.action {
            Action::Report => None,
            Action::Mask | Action::Block => Some(redact::mask(&d.id, d.check, value)),
            Action::Pseudonymise => Some(redact::pseudonym(&self.key, &d.id, d.check, value)),
        }
    }

    /// Validated, non-overlapping hits in normalised `text`, in order.
    pub(crate) fn hits(&self, text: &str) -> Vec<Hit> {
        let bytes = text.as_bytes();
        let windows = self.prefilter.windows(bytes);
        // A window often holds a match of two detectors (a card number is also phone-shaped).
        let mut hits = Vec::with_capacity(2 * windows.len());
        for window in windows {
            let w = window.range;
            let hay = &bytes[w.clone()];
            let mut candidates = window.detectors;
            let gate = self.sets.iter().find(|(mask, ..)| candidates & !mask == 0);
            if let Some((_, set, members)) = gate
                && candidates.count_ones() >= SET_GATE
            {
                candidates &= set.matches(hay).iter().fold(0, |m, k| m | 1 << members[k]);
            }
            while candidates != 0 {
                let i = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let d = &self.detectors[i];
                let mut push = |s: usize, e: usize| {
                    if let Some(end) = self.validate(d, text, w.start + s, w.start + e) {
                        hits.push(Hit {
                            detector: i,
                            start: w.start + s,
                            end,
                        });
                    }
                };
                if d.value == Value::Group {
                    for caps in d.regex.captures_iter(hay) {
                        // The value is the first group that took part, else the whole match.
                        if let Some(m) =
                            caps.iter().skip(1).flatten().next().or_else(|| caps.get(0))
                        {
                            push(m.start(), m.end());
                        }
                    }
                } else {
                    for m in d.regex.find_iter(hay) {
                        let v = d.value.find(hay, m.range());
                        debug_assert!(
                            d.value == Value::Whole || {
                                let caps = d.regex.captures_at(hay, m.start());
                                let group = caps.and_then(|c| c.iter().skip(1).flatten().next());
                                group.map(|g| g.range()) == Some(v.clone())
                            }
                        );
                        push(v.start, v.end);
                    }
                }
            }
        }
        // Earliest first; at the same start the more specific detector, then the longer match.
        hits.sort_by_key(|h| (h.start, h.detector, std::cmp::Reverse(h.end)));
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        for h in hits {
            if kept.last().is_none_or(|k| h.start >= k.end) {
                kept.push(h);
            }
        }
        kept
    }

    /// The end of the validated value starting at `start`, or `None` if the match is no finding.
    fn validate(&self, d: &Detector, text: &str, start: usize, end: usize) -> Option<usize> {
        if start >= end || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            return None;
        }
        let value = &text[start..end];
        let end = if d.check.numeric() {
            start + numeric_prefix(value, |v| check_value(d.check, v))?
        } else {
            let ok = match d.check {
                Check::Token => token_bounded(text, start, end),
                Check::Entropy => token_bounded(text, start, end) && validate::high_entropy(value),
                Check::Ipv4 => validate::ipv4(value) && !dotted_context(text, start, end),
                c => check_value(c, value),
            };
            ok.then_some(end)?
        };
        (!self.allow.contains(&text[start..end])).then_some(end)
    }
}

/// The prefilter for detectors in their final order: detector `i` is bit `i`.
fn prefilter(compiled: &[Compiled]) -> Result<Prefilter, Error> {
    let (mut keywords, mut at, mut always) = (Vec::new(), 0, 0);
    let mut shaped = Shape::ALL.map(|shape| (shape, 0));
    for (i, c) in compiled.iter().enumerate() {
        let bit: Detectors = 1 << i;
        match c.trigger {
            Some(Trigger::Digits(shape)) => {
                for (s, detectors) in &mut shaped {
                    if *s == shape {
                        *detectors |= bit;
                    }
                }
            }
            Some(Trigger::At) => at |= bit,
            Some(Trigger::Keywords {
                words,
                back,
                reach,
                fold,
            }) => keywords.extend(words.iter().map(|w| Keyword {
                word: (*w).to_string(),
                back,
                reach,
                fold,
                detectors: bit,
            })),
            None if c.keywords.is_empty() => always |= bit,
            None => keywords.extend(c.keywords.iter().map(|w| Keyword {
                word: w.clone(),
                back: CUSTOM_BACK,
                reach: CUSTOM_REACH,
                fold: true,
                detectors: bit,
            })),
        }
    }
    Prefilter::new(keywords, shaped, at, always).map_err(Error::Build)
}

fn check_value(check: Check, v: &str) -> bool {
    match check {
        Check::Card => validate::card(v),
        Check::Iban => validate::iban(v),
        Check::Phone => validate::phone(v),
        Check::Luhn => validate::luhn(v),
        Check::Mod97 => validate::mod97(v),
        Check::Ssn => validate::ssn(v),
        Check::Password => validate::password(v),
        Check::Ipv4 => validate::ipv4(v),
        Check::None | Check::Email | Check::Token | Check::Entropy => true,
    }
}

/// The length of the longest prefix of `value` that passes `ok`, trying the whole value and then
/// the value cut before each separator (a card number followed by more digit groups).
fn numeric_prefix(value: &str, ok: impl Fn(&str) -> bool) -> Option<usize> {
    if ok(value) {
        return Some(value.len());
    }
    let b = value.as_bytes();
    (1..b.len())
        .rev()
        .filter(|&i| matches!(b[i], b' ' | b'-' | b'.') && b[i - 1].is_ascii_alphanumeric())
        .find(|&i| ok(&value[..i]))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/')
}

/// Not glued to more token characters: `ghp_…` inside a longer identifier is not a token.
fn token_bounded(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    (start == 0 || !is_token_byte(b[start - 1])) && (end == b.len() || !is_token_byte(b[end]))
}

/// Part of a longer dotted number (`1.2.3.4.5`, a version, an OID): not an address.
fn dotted_context(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let after = b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit);
    let before = start >= 2 && b[start - 1] == b'.' && b[start - 2].is_ascii_digit();
    after || before
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let detectors: Vec<(&str, Action)> = self
            .detectors
            .iter()
            .map(|d| (d.id.as_str(), d.action))
            .collect();
        f.debug_struct("Engine")
            .field("detectors", &detectors)
            .field("allow", &format_args!("[{} values]", self.allow.len()))
            .finish_non_exhaustive()
    }
}
