//! C2SP signed notes with Ed25519 keys (<https://c2sp.org/signed-note>).
//!
//! A signed note is a text ending in a newline, a blank line, then one or more signature lines
//! `— <key name> <base64(key id ‖ signature)>`. Notes come from disk and from auditors, so
//! [`parse`] is strict and total: valid UTF-8 only, no control characters but newline, at most
//! [`MAX_NOTE_BYTES`] and [`MAX_SIGNATURES`], canonical base64, and an error saying what was
//! wrong instead of a panic.

mod key;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub use key::{Signer, Verifier, key_id};

use crate::Error;

/// The largest note [`parse`] reads.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The most signature lines [`parse`] reads (C2SP asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A note split into its text and its (unverified) signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote<'a> {
    /// The signed text, final newline included.
    pub text: &'a str,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature<'a>>,
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature<'a> {
    /// The key name.
    pub name: &'a str,
    /// The key id (the first four bytes of the decoded signature).
    pub key_id: u32,
    /// The signature proper (the bytes after the key id).
    pub signature: Vec<u8>,
}

impl NoteSignature<'_> {
    /// `<name>+<hex id>`.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }
}

/// Signs `text` (which must end in a newline) as a one-signature note.
pub fn sign(signer: &Signer, text: &str) -> Result<String, Error> {
    if !text.ends_with('\n') {
        return Err(Error::MalformedNote("the text must end with a newline"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::MalformedNote("the text holds a control character"));
    }
    let mut blob = signer.key_id().to_be_bytes().to_vec();
    blob.extend_from_slice(&signer.sign_bytes(text.as_bytes()));
    Ok(format!(
        "{text}\n{SIGNATURE_PREFIX}{} {}\n",
        signer.name(),
        STANDARD.encode(blob)
    ))
}

/// Splits a note into text and signatures without checking any signature.
pub fn parse(note: &str) -> Result<SignedNote<'_>, Error> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(Error::MalformedNote("larger than 64 KiB"));
    }
    // Unicode C0 and C1 controls: C2SP forbids the ASCII ones; DEL and C1 have no business in
    // a note either.
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::MalformedNote(
            "holds a control character other than newline",
        ));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(Error::MalformedNote("no blank line before the signatures"))?;
    let (text, block) = (&note[..split + 1], &note[split + 2..]);
    if block.is_empty() {
        return Err(Error::MalformedNote("no signature lines"));
    }
    let Some(block) = block.strip_suffix('\n') else {
        return Err(Error::MalformedNote(
            "the last signature line does not end with a newline",
        ));
    };
    let mut signatures = Vec::new();
    for line in block.split('\n') {
        if signatures.len() == MAX_SIGNATURES {
            return Err(Error::MalformedNote("more than 100 signatures"));
        }
        signatures.push(parse_signature(line)?);
    }
    Ok(SignedNote { text, signatures })
}

fn parse_signature(line: &str) -> Result<NoteSignature<'_>, Error> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(Error::MalformedNote(
            "a signature line does not start with an em dash and space",
        ))?;
    let (name, b64) = rest.split_once(' ').ok_or(Error::MalformedNote(
        "a signature line has no space after the key name",
    ))?;
    if !key::is_valid_name(name) {
        return Err(Error::MalformedNote(
            "a signature's key name is empty or holds a space or '+'",
        ));
    }
    let blob = STANDARD
        .decode(b64)
        .map_err(|_| Error::MalformedNote("a signature is not standard base64"))?;
    if blob.len() < 5 {
        return Err(Error::MalformedNote(
            "a signature is shorter than a key id and one byte",
        ));
    }
    let key_id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
    Ok(NoteSignature {
        name,
        key_id,
        signature: blob[4..].to_vec(),
    })
}

impl Verifier {
    /// Opens a signed note: returns its text if it carries a valid signature by this key.
    ///
    /// Signatures by other keys are ignored (C2SP: "verifiers MUST ignore signatures from
    /// unknown keys"); a note without this key's signature is [`Error::NotSignedBy`], naming
    /// the keys that did sign; this key's signature failing is [`Error::BadSignature`].
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, Error> {
        let parsed = parse(note)?;
        let mut ours = parsed
            .signatures
            .iter()
            .filter(|s| s.name == self.name() && s.key_id == self.key_id())
            .peekable();
        if ours.peek().is_none() {
            return Err(Error::NotSignedBy {
                expected: self.label(),
                found: parsed.signatures.iter().map(NoteSignature::label).collect(),
            });
        }
        for signature in ours {
            if !self.verify_bytes(parsed.text.as_bytes(), &signature.signature) {
                return Err(Error::BadSignature { key: self.label() });
            }
        }
        Ok(parsed.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of Go's `golang.org/x/mod/sumdb/note` package documentation.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn signs_and_opens_exactly_like_go() {
        let signer = Signer::from_key_string(GO_SKEY).unwrap();
        assert_eq!(signer.to_key_string(), GO_SKEY);
        assert_eq!(signer.verifier_key(), GO_VKEY);
        assert_eq!(sign(&signer, GO_TEXT).unwrap(), GO_NOTE);
        let verifier = Verifier::parse(GO_VKEY).unwrap();
        assert_eq!(verifier.open(GO_NOTE).unwrap(), GO_TEXT);
    }

    #[test]
    fn another_key_is_named_in_the_error() {
        let other = Signer::from_seed("warden.test/audit", [7; 32]).unwrap();
        let note = sign(&other, GO_TEXT).unwrap();
        let err = Verifier::parse(GO_VKEY)
            .unwrap()
            .open(&note)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PeterNeumann+c74f20a3"), "{err}");
        assert!(
            err.contains(&format!("warden.test/audit+{:08x}", other.key_id())),
            "{err}"
        );
    }

    #[test]
    fn an_altered_text_or_signature_fails() {
        let verifier = Verifier::parse(GO_VKEY).unwrap();
        let altered = GO_NOTE.replacen("problem,", "problem;", 1);
        assert!(matches!(
            verifier.open(&altered),
            Err(Error::BadSignature { .. })
        ));
        let forged = GO_NOTE.replacen("x08go/ZJ", "x08go/ZK", 1);
        assert!(verifier.open(&forged).is_err());
    }

    #[test]
    fn malformed_notes_are_precise_errors() {
        let verifier = Verifier::parse(GO_VKEY).unwrap();
        for (note, why) in [
            ("", "no blank line"),
            ("text\n\n", "no signature lines"),
            ("text\n\n\u{2014} PeterNeumann x08go\n", "base64"),
            ("text\n\n- PeterNeumann AAAAAAA=\n", "em dash"),
            ("text\n\n\u{2014} PeterNeumann AAAAAAA=", "newline"),
            ("te\rxt\n\n\u{2014} a AAAAAAA=\n", "control"),
            ("text\n\n\u{2014} a+b AAAAAAA=\n", "key name"),
            ("text\n\n\u{2014} a AAAA\n", "shorter"),
        ] {
            let err = verifier.open(note).unwrap_err().to_string();
            assert!(err.contains(why), "{note:?}: {err}");
        }
    }

    #[test]
    fn malformed_keys_are_precise_errors() {
        assert!(matches!(
            Verifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            Err(Error::KeyIdMismatch { .. })
        ));
        assert!(matches!(
            Verifier::parse("PeterNeumann+c74f20a3"),
            Err(Error::MalformedKey(_))
        ));
        assert!(matches!(
            Verifier::parse("Peter Neumann+c74f20a3+AQ=="),
            Err(Error::MalformedKey(_) | Error::InvalidKeyName(_))
        ));
        assert!(matches!(
            Signer::from_key_string(GO_VKEY),
            Err(Error::MalformedKey(_))
        ));
        assert!(matches!(
            Signer::generate("a b"),
            Err(Error::InvalidKeyName(_))
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let signer = Signer::from_key_string(GO_SKEY).unwrap();
        let debug = format!("{signer:?}");
        assert!(
            !debug.contains("AYEKFALV") && debug.contains("c74f20a3"),
            "{debug}"
        );
    }
}
