//! Where a detector's value lies in its match.
//!
//! A pattern with groups takes its value from the first group that took part, which needs the
//! capturing engine (a backtracker over the match). For the built-in patterns with groups, the
//! group is fixed by the match's own bytes, so the engine finds it without that engine:
//!
//! - `aws_secret_key`, `secret_entropy`: the value ends the match and starts after its first `:`
//!   or `=`, an optional `>`, white space and an optional quote. Their key words and the
//!   characters before the `:` or `=` hold neither, and neither white space nor a quote can
//!   start the value.
//! - `connection_password`: a match ending in `@` is a URL, `scheme://user:password@`, and the
//!   value lies between the first `:` after `://` (user names hold no `:`) and the `@`; a match
//!   ending in `;` is `password=value;`, and the value lies between the white space after the
//!   first `=` and the `;` (values hold neither white space nor `;`).
//!
//! Debug builds check each of these against the capturing engine.

use std::ops::Range;

/// Where a detector's value lies in its match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// The whole match.
    Whole,
    /// The first group that took part, else the whole match (capturing engine).
    Group,
    /// After the assignment: `aws_secret_key`, `secret_entropy`.
    Assigned,
    /// The password of a connection string: `connection_password`.
    Credential,
}

impl Value {
    /// The rule for a detector: `builtin` is the id of a built-in detector, `None` for a custom
    /// rule; `groups` whether its pattern has groups.
    pub(crate) fn of(builtin: Option<&str>, groups: bool) -> Value {
        match builtin {
            Some("aws_secret_key" | "secret_entropy") => Value::Assigned,
            Some("connection_password") => Value::Credential,
            _ if groups => Value::Group,
            _ => Value::Whole,
        }
    }

    /// The value in the match `m` of `hay`, for every rule but [`Value::Group`].
    pub(crate) fn find(self, hay: &[u8], m: Range<usize>) -> Range<usize> {
        let bytes = &hay[m.clone()];
        let at = |i: usize| m.start + i;
        match self {
            Value::Whole | Value::Group => m,
            Value::Assigned => match bytes.iter().position(|b| matches!(b, b':' | b'=')) {
                Some(i) => {
                    let i = skip_quote(bytes, skip_space(bytes, skip(bytes, i + 1, b'>')));
                    at(i)..m.end
                }
                None => m,
            },
            Value::Credential => match bytes.last() {
                Some(b'@') => {
                    let scheme = find(bytes, b"://").unwrap_or(0) + 3;
                    match bytes[scheme.min(bytes.len())..]
                        .iter()
                        .position(|&b| b == b':')
                    {
                        Some(i) => at(scheme + i + 1)..m.end - 1,
                        None => m,
                    }
                }
                Some(b';') => match bytes.iter().position(|&b| b == b'=') {
                    Some(i) => at(skip_space(bytes, i + 1))..m.end - 1,
                    None => m,
                },
                _ => m,
            },
        }
    }
}

fn find(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes.windows(needle.len()).position(|w| w == needle)
}

/// Past `b` at `i`, if it is there.
fn skip(bytes: &[u8], i: usize, b: u8) -> usize {
    if bytes.get(i) == Some(&b) { i + 1 } else { i }
}

/// Past white space (`\s` of ASCII) from `i`.
fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' '))
    {
        i += 1;
    }
    i
}

/// Past a quote at `i`, if there is one.
fn skip_quote(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(b'"' | b'\'') => i + 1,
        _ => i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(rule: Value, m: &str) -> &str {
        &m[rule.find(m.as_bytes(), 0..m.len())]
    }

    #[test]
    fn values_after_assignments() {
        assert_eq!(value(Value::Assigned, "api_key: 'abc=def'"), "abc=def'");
        assert_eq!(value(Value::Assigned, "token==xyz"), "=xyz");
        assert_eq!(value(Value::Assigned, "aws_secret_key\" => \"AB/C"), "AB/C");
    }

    #[test]
    fn credentials() {
        assert_eq!(value(Value::Credential, "postgres://app:pa:ss@"), "pa:ss");
        assert_eq!(
            value(Value::Credential, "Password = hunter2=x;"),
            "hunter2=x"
        );
        assert_eq!(value(Value::Whole, "x"), "x");
    }
}
