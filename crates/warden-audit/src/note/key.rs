//! Ed25519 note keys: the signer (secret) and the verifier an auditor holds, with the key
//! strings of Go's `golang.org/x/mod/sumdb/note`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Error;

/// The signature type byte of Ed25519 in C2SP signed notes.
const ALG_ED25519: u8 = 0x01;

/// A key that signs checkpoints: a key name and an Ed25519 key.
///
/// Its key string, `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>` (the form Go's
/// `note.NewSigner` reads), is a secret: `Debug` shows only the name and id.
#[derive(Clone)]
pub struct Signer {
    name: String,
    id: u32,
    key: SigningKey,
}

/// A key that checks checkpoint signatures: the public half of a [`Signer`].
///
/// Its key string, `<name>+<8 hex id>+<base64(0x01 ‖ public key)>`, is what Go's
/// `note.NewVerifier` reads; `Display` writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl Signer {
    /// A new key named `name`, from the operating system's random source.
    pub fn generate(name: &str) -> Result<Signer, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
        Signer::from_seed(name, seed)
    }

    /// The key named `name` with this Ed25519 seed (the 32-byte private key of RFC 8032).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, Error> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Signer {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Reads a signer key string, `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`.
    pub fn from_key_string(skey: &str) -> Result<Signer, Error> {
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(Error::MalformedKey("a signer key starts with PRIVATE+KEY+"))?;
        let (name, id, key) = split_key(rest)?;
        let seed: [u8; 32] = key
            .try_into()
            .map_err(|_| Error::MalformedKey("an Ed25519 seed is 32 bytes"))?;
        let signer = Signer::from_seed(name, seed)?;
        if signer.id != id {
            return Err(Error::KeyIdMismatch {
                found: id,
                expected: signer.id,
            });
        }
        Ok(signer)
    }

    /// The signer key string. A secret: store it like a password.
    pub fn to_key_string(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(key)
        )
    }

    /// The verifier for this key.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The verifier key string to give auditors, `<name>+<hex id>+<base64(0x01 ‖ key)>`.
    pub fn verifier_key(&self) -> String {
        self.verifier().to_string()
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id: the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub(crate) fn sign_bytes(&self, text: &[u8]) -> [u8; 64] {
        self.key.sign(text).to_bytes()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Reads a verifier key string, `<name>+<8 hex id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(vkey: &str) -> Result<Verifier, Error> {
        let (name, id, key) = split_key(vkey.trim_end_matches('\n'))?;
        check_name(name)?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| Error::MalformedKey("an Ed25519 public key is 32 bytes"))?;
        let expected = key_id(name, &key);
        if id != expected {
            return Err(Error::KeyIdMismatch {
                found: id,
                expected,
            });
        }
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| Error::MalformedKey("not an Ed25519 public key"))?;
        Ok(Verifier {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// `<name>+<hex id>`: how errors name this key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    pub(crate) fn verify_bytes(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(text, &signature).is_ok()
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(key))
    }
}

/// The key id of an Ed25519 key: `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]`, big-endian.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// Whether `name` can name a key: non-empty, no Unicode space, no `+` (C2SP signed-note).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn check_name(name: &str) -> Result<(), Error> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidKeyName(name.to_string()))
    }
}

/// Splits `<name>+<8 hex>+<base64(0x01 ‖ key)>` and checks the algorithm byte.
fn split_key(s: &str) -> Result<(&str, u32, Vec<u8>), Error> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::MalformedKey("expected <name>+<hex id>+<base64 key>"));
    };
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::MalformedKey("the key id is 8 hex digits"));
    }
    let id = u32::from_str_radix(hex, 16).map_err(|_| Error::MalformedKey("bad key id"))?;
    let key = STANDARD
        .decode(b64)
        .map_err(|_| Error::MalformedKey("the key is not standard base64"))?;
    match key.split_first() {
        Some((&ALG_ED25519, rest)) => Ok((name, id, rest.to_vec())),
        Some(_) => Err(Error::MalformedKey(
            "not an Ed25519 key (algorithm byte is not 0x01)",
        )),
        None => Err(Error::MalformedKey("the key is empty")),
    }
}
