//! Why a policy set did not load.

use std::fmt;

/// One problem in a policy file, at a place a person can open in an editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file as it was named to the loader (for [`crate::PolicyEngine::load_dir`], the
    /// directory joined with the file name).
    pub file: String,
    /// 1-based; 0 when the problem concerns the whole file or directory.
    pub line: usize,
    /// 1-based, in characters; 0 with `line` 0.
    pub column: usize,
    pub message: String,
}

/// Every problem found while loading a policy set; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl fmt::Display for PolicyErrors {
    /// One `file:line:col: message` per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}
impl std::error::Error for PolicyErrors {}

impl PolicyErrors {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &PolicyError> {
        self.0.iter()
    }
}
