//! The `@consent` annotation of a permit policy.
//!
//! ```cedar
//! @consent("once")     // the user approves this one call (bound to its arguments)
//! @consent("15m")      // the user approves this tool for 15 minutes
//! permit (principal, action == Action::"call_tool", resource == Tool::"files.write_file");
//! ```
//!
//! The value is `"once"` or a duration: one or more `<number><unit>` parts with units `s`, `m`,
//! `h`, `d` (`"90s"`, `"15m"`, `"1h30m"`, `"7d"`), greater than zero. Anything else, a bare
//! `@consent`, or `@consent` on a `forbid` is a load error.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

/// How long an approval asked for by a consent policy lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentRule {
    /// One call, with exactly these arguments.
    Once,
    /// This tool, for this user and agent, for a while.
    For(Duration),
}

impl ConsentRule {
    /// Parses the annotation's value.
    pub fn parse(text: &str) -> Result<ConsentRule, String> {
        let text = text.trim();
        if text == "once" {
            return Ok(ConsentRule::Once);
        }
        parse_duration(text).map(ConsentRule::For).ok_or_else(|| {
            format!(
                "@consent must be \"once\" or a duration such as \"15m\", \"2h\", \"1h30m\", \"7d\"; got {text:?}"
            )
        })
    }

    /// Orders rules from the strictest: `Once`, then shorter durations before longer ones. When
    /// several consent policies match, the strictest one decides.
    pub fn strictness(&self, other: &ConsentRule) -> Ordering {
        match (self, other) {
            (ConsentRule::Once, ConsentRule::Once) => Ordering::Equal,
            (ConsentRule::Once, ConsentRule::For(_)) => Ordering::Less,
            (ConsentRule::For(_), ConsentRule::Once) => Ordering::Greater,
            (ConsentRule::For(a), ConsentRule::For(b)) => a.cmp(b),
        }
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (digits.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

impl fmt::Display for ConsentRule {
    /// The canonical annotation value: `once`, or the duration in its largest whole units
    /// (`1h30m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsentRule::Once => f.write_str("once"),
            ConsentRule::For(d) => {
                let mut secs = d.as_secs();
                for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
                    if secs >= size {
                        write!(f, "{}{unit}", secs / size)?;
                        secs %= size;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_durations() {
        assert_eq!(ConsentRule::parse("once"), Ok(ConsentRule::Once));
        let mins = |m: u64| Ok(ConsentRule::For(Duration::from_secs(m * 60)));
        assert_eq!(ConsentRule::parse("15m"), mins(15));
        assert_eq!(ConsentRule::parse("1h30m"), mins(90));
        assert_eq!(ConsentRule::parse("2d"), mins(2 * 24 * 60));
        assert_eq!(
            ConsentRule::parse("90s").map(|r| r.to_string()),
            Ok("1m30s".into())
        );
        for bad in ["", "0m", "15", "m", "15 m", "1w", "forever", "-5m"] {
            assert!(ConsentRule::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn once_is_strictest() {
        let short = ConsentRule::For(Duration::from_secs(60));
        let long = ConsentRule::For(Duration::from_secs(600));
        assert_eq!(ConsentRule::Once.strictness(&short), Ordering::Less);
        assert_eq!(short.strictness(&long), Ordering::Less);
    }
}
