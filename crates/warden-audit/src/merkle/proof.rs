//! Inclusion and consistency proofs: building them (RFC 6962 §2.1.1–2.1.2, the `PATH` and
//! `PROOF` functions) and verifying them (RFC 9162 §2.1.3.2 and §2.1.4.2).

use super::{EMPTY_ROOT, Hash, HashStore, node_hash, range_hash, split};
use crate::Error;

/// The audit path of leaf `index` in the tree of the first `size` leaves: the sibling hashes
/// from the leaf's up to the root's children (RFC 9162 §2.1.3.1).
pub fn inclusion_proof<S: HashStore + ?Sized>(
    store: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, Error> {
    check_size(store, size)?;
    if index >= size {
        return Err(Error::OutOfRange {
            what: "leaf index",
            value: index,
            size,
        });
    }
    let (mut lo, mut hi) = (0, size);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index - lo < k {
            path.push(range_hash(store, lo + k, hi));
            hi = lo + k;
        } else {
            path.push(range_hash(store, lo, lo + k));
            lo += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The proof that the tree of the first `old` leaves is a prefix of the tree of the first
/// `new` (RFC 9162 §2.1.4.1). Empty when `old` is 0 or equals `new`.
pub fn consistency_proof<S: HashStore + ?Sized>(
    store: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, Error> {
    check_size(store, new)?;
    if old > new {
        return Err(Error::OutOfRange {
            what: "old tree size",
            value: old,
            size: new,
        });
    }
    let mut proof = Vec::new();
    if old == 0 || old == new {
        return Ok(proof);
    }
    let (mut lo, mut hi) = (0, new);
    let mut whole = true; // the RFC's `b`: still on the left edge, where `old`'s root is known
    loop {
        if old - lo == hi - lo {
            if !whole {
                proof.push(range_hash(store, lo, hi));
            }
            break;
        }
        let k = split(hi - lo);
        if old - lo <= k {
            proof.push(range_hash(store, lo + k, hi));
            hi = lo + k;
        } else {
            proof.push(range_hash(store, lo, lo + k));
            lo += k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

fn check_size<S: HashStore + ?Sized>(store: &S, size: u64) -> Result<(), Error> {
    if size > store.size() {
        return Err(Error::OutOfRange {
            what: "tree size",
            value: size,
            size: store.size(),
        });
    }
    Ok(())
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::ProofInvalid("leaf index is not below the tree size"));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(Error::ProofInvalid("inclusion proof is too long"));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(Error::ProofInvalid("inclusion proof is too short"));
    }
    if r != *root {
        return Err(Error::ProofInvalid("inclusion proof leads to another root"));
    }
    Ok(())
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), Error> {
    if old > new {
        return Err(Error::ProofInvalid("old tree size is larger than the new"));
    }
    if old == new || old == 0 {
        if !proof.is_empty() {
            return Err(Error::ProofInvalid("consistency proof should be empty"));
        }
        if old == new && old_root != new_root {
            return Err(Error::ProofInvalid(
                "trees of equal size have different roots",
            ));
        }
        if old == 0 && *old_root != EMPTY_ROOT {
            return Err(Error::ProofInvalid(
                "the empty tree's root is not SHA-256(\"\")",
            ));
        }
        return Ok(());
    }
    // RFC 9162 §2.1.4.2: when `old` is a power of two its root starts the path.
    let mut path = proof.iter();
    let first = if old.is_power_of_two() {
        Some(old_root)
    } else {
        path.next()
    };
    let Some(first) = first else {
        return Err(Error::ProofInvalid("consistency proof is empty"));
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in path {
        if s == 0 {
            return Err(Error::ProofInvalid("consistency proof is too long"));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(Error::ProofInvalid("consistency proof is too short"));
    }
    if fr != *old_root {
        return Err(Error::ProofInvalid(
            "consistency proof leads to another old root",
        ));
    }
    if sr != *new_root {
        return Err(Error::ProofInvalid(
            "consistency proof leads to another new root",
        ));
    }
    Ok(())
}
