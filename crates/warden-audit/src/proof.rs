//! Proofs as text an auditor can keep, mail and check offline with the verifier key.
//!
//! # Inclusion: C2SP tlog-proof
//!
//! An inclusion proof is a C2SP `tlog-proof@v1` (<https://c2sp.org/tlog-proof>); its `extra`
//! line carries the record's leaf hash, so the proof checks without the record (whose payload
//! may be private) and, given the record, that it is this one:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 leaf hash: SHA-256(0x00 ‖ record bytes)>
//! index <seq>
//! <base64 hash>            one per line, from the leaf's sibling up (RFC 6962 §2.1.1)
//!
//! <the checkpoint note, verbatim>
//! ```
//!
//! # Consistency
//!
//! A consistency proof has the same shape, with the older tree's size and root in place of the
//! index, and the newer tree's checkpoint at the end:
//!
//! ```text
//! warden-audit/consistency-proof@v1
//! old <old size> <base64 old root>
//! <base64 hash>            one per line (RFC 9162 §2.1.4)
//!
//! <the newer checkpoint note, verbatim>
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Error;
use crate::checkpoint::{Checkpoint, parse_hash};
use crate::merkle::{self, Hash, leaf_hash};
use crate::note::Verifier;

const INCLUSION_HEADER: &str = "c2sp.org/tlog-proof@v1";
const CONSISTENCY_HEADER: &str = "warden-audit/consistency-proof@v1";

/// The proof that a record is in a checkpointed tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The record's seq.
    pub index: u64,
    /// The record's leaf hash.
    pub leaf: Hash,
    /// The audit path.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint note the path leads to.
    pub checkpoint: String,
}

/// The proof that an older tree is a prefix of a checkpointed newer one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub old_size: u64,
    /// The older tree's root.
    pub old_root: Hash,
    /// The consistency proof.
    pub hashes: Vec<Hash>,
    /// The newer tree's signed checkpoint note.
    pub checkpoint: String,
}

impl InclusionProof {
    /// The proof as text (see the module documentation).
    pub fn to_text(&self) -> String {
        let head = format!(
            "{INCLUSION_HEADER}\nextra {}\nindex {}\n",
            STANDARD.encode(self.leaf),
            self.index
        );
        assemble(head, &self.hashes, &self.checkpoint)
    }

    /// Reads a proof's text.
    pub fn parse(text: &str) -> Result<InclusionProof, Error> {
        let (head, hashes, checkpoint) = split(text, INCLUSION_HEADER)?;
        let [extra, index] = head[..] else {
            return Err(Error::MalformedProof(
                "expected an extra line and an index line",
            ));
        };
        let leaf =
            extra
                .strip_prefix("extra ")
                .and_then(parse_hash)
                .ok_or(Error::MalformedProof(
                    "the extra line is not a base64 leaf hash",
                ))?;
        let index =
            index
                .strip_prefix("index ")
                .and_then(parse_decimal)
                .ok_or(Error::MalformedProof(
                    "the index line is not `index <decimal>`",
                ))?;
        Ok(InclusionProof {
            index,
            leaf,
            hashes,
            checkpoint,
        })
    }

    /// Checks the checkpoint's signature with `key` and that the path leads from the leaf to
    /// its root; returns the checkpoint.
    pub fn verify(&self, key: &Verifier) -> Result<Checkpoint, Error> {
        let checkpoint = Checkpoint::open(&self.checkpoint, key)?;
        merkle::verify_inclusion(
            &self.leaf,
            self.index,
            checkpoint.size,
            &self.hashes,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }

    /// [`verify`](InclusionProof::verify), and that `record` (its stored bytes) is the leaf.
    pub fn verify_record(&self, key: &Verifier, record: &[u8]) -> Result<Checkpoint, Error> {
        if leaf_hash(record) != self.leaf {
            return Err(Error::ProofInvalid("the record is not the proven leaf"));
        }
        self.verify(key)
    }
}

impl ConsistencyProof {
    /// The proof as text (see the module documentation).
    pub fn to_text(&self) -> String {
        let head = format!(
            "{CONSISTENCY_HEADER}\nold {} {}\n",
            self.old_size,
            STANDARD.encode(self.old_root)
        );
        assemble(head, &self.hashes, &self.checkpoint)
    }

    /// Reads a proof's text.
    pub fn parse(text: &str) -> Result<ConsistencyProof, Error> {
        let (head, hashes, checkpoint) = split(text, CONSISTENCY_HEADER)?;
        let [old] = head[..] else {
            return Err(Error::MalformedProof(
                "expected one `old <size> <root>` line",
            ));
        };
        let (size, root) = old
            .strip_prefix("old ")
            .and_then(|rest| rest.split_once(' '))
            .ok_or(Error::MalformedProof(
                "the old line is not `old <size> <root>`",
            ))?;
        let old_size =
            parse_decimal(size).ok_or(Error::MalformedProof("the old size is not a decimal"))?;
        let old_root =
            parse_hash(root).ok_or(Error::MalformedProof("the old root is not a base64 hash"))?;
        Ok(ConsistencyProof {
            old_size,
            old_root,
            hashes,
            checkpoint,
        })
    }

    /// Checks the newer checkpoint's signature with `key` and that the older tree is a prefix
    /// of it; returns the newer checkpoint.
    pub fn verify(&self, key: &Verifier) -> Result<Checkpoint, Error> {
        let new = Checkpoint::open(&self.checkpoint, key)?;
        merkle::verify_consistency(
            self.old_size,
            new.size,
            &self.hashes,
            &self.old_root,
            &new.root,
        )?;
        Ok(new)
    }

    /// [`verify`](ConsistencyProof::verify), starting from `trusted`, a checkpoint note the
    /// auditor saved earlier: its size and root must be the proof's older tree.
    pub fn verify_from(&self, key: &Verifier, trusted: &str) -> Result<Checkpoint, Error> {
        let old = Checkpoint::open(trusted, key)?;
        if old.size != self.old_size || old.root != self.old_root {
            return Err(Error::ProofInvalid(
                "the proof starts from another tree than the trusted checkpoint",
            ));
        }
        if old.origin != Checkpoint::open(&self.checkpoint, key)?.origin {
            return Err(Error::ProofInvalid("the checkpoints are of different logs"));
        }
        self.verify(key)
    }
}

fn assemble(mut text: String, hashes: &[Hash], checkpoint: &str) -> String {
    for hash in hashes {
        text.push_str(&STANDARD.encode(hash));
        text.push('\n');
    }
    text.push('\n');
    text.push_str(checkpoint);
    text
}

/// Splits a proof into its header lines (after the first), hashes and checkpoint note.
fn split<'a>(text: &'a str, header: &str) -> Result<(Vec<&'a str>, Vec<Hash>, String), Error> {
    let (head, checkpoint) = text
        .split_once("\n\n")
        .ok_or(Error::MalformedProof("no blank line before the checkpoint"))?;
    let mut lines = head.split('\n');
    if lines.next() != Some(header) {
        return Err(Error::MalformedProof(
            "the first line is not the proof format's name",
        ));
    }
    let mut fields = Vec::new();
    let mut hashes = Vec::new();
    for line in lines {
        match parse_hash(line) {
            Some(hash) if !line.contains(' ') => hashes.push(hash),
            _ if hashes.is_empty() => fields.push(line),
            _ => {
                return Err(Error::MalformedProof(
                    "a line after the hashes is not a hash",
                ));
            }
        }
    }
    if hashes.len() > 128 {
        return Err(Error::MalformedProof("more than 128 hashes"));
    }
    Ok((fields, hashes, checkpoint.to_string()))
}

fn parse_decimal(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}
