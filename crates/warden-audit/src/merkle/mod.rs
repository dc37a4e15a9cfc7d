//! RFC 6962 / RFC 9162 Merkle tree hashing, as pure functions over a [`HashStore`].
//!
//! A leaf's hash is `SHA-256(0x00 ‖ bytes)`, an interior node's `SHA-256(0x01 ‖ left ‖ right)`,
//! and the hash of a tree of `n` leaves, `MTH(D[0:n])`, splits at the largest power of two
//! below `n` (RFC 9162 §2.1.1). The empty tree's hash is `SHA-256("")`.
//!
//! The functions never read leaves: they ask a [`HashStore`] for the hashes of *complete*
//! subtrees (2^level leaves, aligned). A slice of leaf hashes is a store (it hashes on demand);
//! [`Tree`] is the store the log keeps in memory, which holds the tile levels only (32 bytes per
//! record and a little more) and hashes at most 127 nodes per subtree asked.

mod proof;
mod tree;

#[cfg(test)]
mod tests;

use sha2::{Digest, Sha256};

pub use proof::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
pub use tree::{Frontier, TILE_HEIGHT, TILE_WIDTH, Tree};

/// A SHA-256 hash: of a leaf, of a subtree, or a tree's root.
pub type Hash = [u8; 32];

/// `MTH({})`, the hash of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of a leaf holding `bytes`: `SHA-256(0x00 ‖ bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(bytes);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Where the Merkle functions find the hashes of complete subtrees.
pub trait HashStore {
    /// The number of leaves stored.
    fn size(&self) -> u64;

    /// The hash of the complete subtree of `2^level` leaves starting at leaf
    /// `index << level`. Callers only ask for subtrees that lie wholly below
    /// [`size`](HashStore::size).
    fn subtree(&self, level: u32, index: u64) -> Hash;
}

impl HashStore for [Hash] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn subtree(&self, level: u32, index: u64) -> Hash {
        let start = (index << level) as usize;
        perfect_root(&self[start..start + (1usize << level)])
    }
}

impl HashStore for Vec<Hash> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }

    fn subtree(&self, level: u32, index: u64) -> Hash {
        self.as_slice().subtree(level, index)
    }
}

/// The root of a perfect tree over `hashes` (a power-of-two count, at least one).
pub(crate) fn perfect_root(hashes: &[Hash]) -> Hash {
    match hashes {
        [one] => *one,
        _ => {
            let (left, right) = hashes.split_at(hashes.len() / 2);
            node_hash(&perfect_root(left), &perfect_root(right))
        }
    }
}

/// `MTH(D[0:n])`: the root of the first `n` leaves of `store` (`n` ≤ its size).
pub fn root<S: HashStore + ?Sized>(store: &S, n: u64) -> Hash {
    if n == 0 {
        EMPTY_ROOT
    } else {
        range_hash(store, 0, n)
    }
}

/// `MTH(D[lo:hi])` for a range the RFC's recursion produces: `hi > lo`, and `lo` a multiple of
/// every power of two not above `hi - lo`.
pub(crate) fn range_hash<S: HashStore + ?Sized>(store: &S, lo: u64, hi: u64) -> Hash {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return store.subtree(n.trailing_zeros(), lo >> n.trailing_zeros());
    }
    let k = split(n);
    node_hash(
        &range_hash(store, lo, lo + k),
        &range_hash(store, lo + k, hi),
    )
}

/// The largest power of two strictly below `n` (`n` ≥ 2): where RFC 9162 splits a tree.
pub(crate) fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}
