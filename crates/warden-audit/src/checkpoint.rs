//! The body of a C2SP checkpoint (<https://c2sp.org/tlog-checkpoint>): the log's origin, its
//! tree size and root hash, one per line, then optional extension lines.
//!
//! ```text
//! warden.example/audit
//! 20852163
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Error;
use crate::merkle::Hash;
use crate::note::{Signer, Verifier, sign};

/// A tree head: which log, how many records, and the Merkle root over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (Warden uses the signing key's name).
    pub origin: String,
    /// The number of records the root covers.
    pub size: u64,
    /// `MTH` of the first `size` records.
    pub root: Hash,
    /// Extension lines, each non-empty (Warden writes none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Parses a checkpoint body strictly: at least three non-empty lines, each ending in a
    /// newline; a decimal size without leading zeros; a root of exactly 32 bytes in canonical
    /// base64.
    pub fn parse(text: &str) -> Result<Checkpoint, Error> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(Error::MalformedCheckpoint(
                "the text does not end with a newline",
            ));
        };
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::MalformedCheckpoint("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(Error::MalformedCheckpoint("the origin line is empty"));
        }
        let size = parse_size(size)?;
        let root = parse_hash(root).ok_or(Error::MalformedCheckpoint(
            "the root is not 32 bytes of base64",
        ))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(Error::MalformedCheckpoint("an extension line is empty"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// Signs this checkpoint as a C2SP signed note.
    pub fn sign(&self, signer: &Signer) -> Result<String, Error> {
        sign(signer, &self.to_string())
    }

    /// Opens a signed checkpoint note with `key` and parses its body.
    pub fn open(note: &str, key: &Verifier) -> Result<Checkpoint, Error> {
        Checkpoint::parse(key.open(note)?)
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

fn parse_size(line: &str) -> Result<u64, Error> {
    let digits = !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit());
    if !digits || (line.len() > 1 && line.starts_with('0')) {
        return Err(Error::MalformedCheckpoint(
            "the size is not a decimal without leading zeros",
        ));
    }
    line.parse()
        .map_err(|_| Error::MalformedCheckpoint("the size does not fit 64 bits"))
}

/// Decodes a base64 SHA-256 hash (canonical standard base64, 32 bytes).
pub(crate) fn parse_hash(b64: &str) -> Option<Hash> {
    STANDARD.decode(b64).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn parses_and_formats_the_c2sp_example() {
        let c = Checkpoint::parse(EXAMPLE).unwrap();
        assert_eq!(
            (c.origin.as_str(), c.size),
            ("example.com/behind-the-sofa", 20852163)
        );
        assert_eq!(c.to_string(), EXAMPLE);
        let ext = format!("{EXAMPLE}ext one\n");
        assert_eq!(Checkpoint::parse(&ext).unwrap().extensions, ["ext one"]);
    }

    #[test]
    fn rejects_malformed_bodies() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        for (text, why) in [
            ("o\n1\n".to_string(), "fewer than three"),
            (format!("o\n01\n{root}\n"), "leading zeros"),
            (format!("o\n-1\n{root}\n"), "decimal"),
            (format!("o\n99999999999999999999\n{root}\n"), "64 bits"),
            ("o\n1\nAAAA\n".to_string(), "32 bytes"),
            (format!("o\n1\n{root}"), "newline"),
            (format!("\n1\n{root}\n"), "origin"),
            (format!("o\n1\n{root}\n\nx\n"), "extension"),
        ] {
            let err = Checkpoint::parse(&text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
