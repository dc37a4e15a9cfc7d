//! Policy files as text: splitting a file into its policy statements and turning byte offsets
//! into `line:column` for error messages.
//!
//! Each statement is parsed on its own so that it keeps its own place in its file: a policy's
//! default id is `file:line`, and Cedar's error spans (relative to the text it parsed) become file
//! positions by adding the statement's offset.

/// One policy statement of a file: its text from its first token to its `;` (or the end of the
/// file), and where that text starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Statement<'a> {
    pub text: &'a str,
    pub offset: usize,
}

/// Splits Cedar source at top-level `;`, outside string literals and `//` comments. Stretches
/// holding only whitespace and comments are dropped.
pub(crate) fn split_statements(source: &str) -> Vec<Statement<'_>> {
    let bytes = source.as_bytes();
    let mut statements = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                start.get_or_insert(i);
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b';' => {
                let from = start.take().unwrap_or(i);
                statements.push(Statement {
                    text: &source[from..=i],
                    offset: from,
                });
            }
            b if b.is_ascii_whitespace() => {}
            _ => {
                start.get_or_insert(i);
            }
        }
        i += 1;
    }
    if let Some(from) = start {
        statements.push(Statement {
            text: &source[from..],
            offset: from,
        });
    }
    statements
}

/// Byte offset → 1-based line and column (columns count characters).
pub(crate) struct LineIndex<'a> {
    source: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(source: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            source,
            line_starts,
        }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_strings_and_comments() {
        let src = "// a; comment\npermit(principal, action, resource);\n\n@id(\"x;y\")\nforbid(principal, action, resource) when { \"\\\";\" == \"\" };\n// trailing";
        let parts = split_statements(src);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].text, "permit(principal, action, resource);");
        assert!(parts[1].text.starts_with("@id(\"x;y\")"));
        assert!(parts[1].text.ends_with("== \"\" };"));
        let index = LineIndex::new(src);
        assert_eq!(index.line_col(parts[0].offset), (2, 1));
        assert_eq!(index.line_col(parts[1].offset), (4, 1));
    }

    #[test]
    fn keeps_an_unterminated_statement() {
        let parts = split_statements("permit(principal, action, resource)\n");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].offset, 0);
    }

    #[test]
    fn columns_count_characters() {
        let index = LineIndex::new("é x\nab");
        assert_eq!(index.line_col(3), (1, 3));
        assert_eq!(index.line_col(6), (2, 2));
        assert_eq!(index.line_col(600), (2, 3));
    }
}
