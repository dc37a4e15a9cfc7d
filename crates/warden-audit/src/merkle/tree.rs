//! The log's in-memory hash store, laid out like C2SP tlog-tiles, and a frontier for roots.

use super::{EMPTY_ROOT, Hash, HashStore, node_hash, perfect_root};

/// Hashes per tile: C2SP tiles have height 8.
pub const TILE_WIDTH: usize = 256;
/// A tile's height: tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;

/// The hashes of an append-only tree, kept at the tile levels only.
///
/// `levels[k]` holds the hashes at tree level `8k`: the leaf hashes for `k = 0`, and for
/// `k ≥ 1` the root of each complete run of 256 hashes of `levels[k - 1]`. That is exactly the
/// data of the C2SP tiles at level `k`, costs 32 bytes per leaf plus 1/256 more per level, and
/// lets any complete subtree be hashed from at most 128 stored hashes.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Appends a leaf hash.
    ///
    /// The frontier hashes every complete subtree once, as the leaf completes it; one of tree
    /// level `8k` is the next hash of tile level `k`, so the tile levels take it from there
    /// instead of hashing its 256 children again.
    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        let mut keep = |hash: Hash, level: u32| {
            if level.is_multiple_of(TILE_HEIGHT) {
                let k = (level / TILE_HEIGHT) as usize;
                if levels.len() == k {
                    levels.push(Vec::new());
                }
                levels[k].push(hash);
            }
        };
        keep(leaf, 0);
        self.frontier.push_with(leaf, &mut keep);
    }

    /// The root of the whole tree (`MTH(D[0:size])`), from the frontier: O(log size).
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The hashes at tile level `level` (tree level `8 × level`); empty above the top.
    pub fn tile_level(&self, level: usize) -> &[Hash] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        self.tile_level(0)
    }
}

impl HashStore for Tree {
    fn size(&self) -> u64 {
        self.leaves().len() as u64
    }

    fn subtree(&self, level: u32, index: u64) -> Hash {
        let base = self.tile_level((level / TILE_HEIGHT) as usize);
        let within = level % TILE_HEIGHT;
        let start = (index << within) as usize;
        perfect_root(&base[start..start + (1usize << within)])
    }
}

/// The right edge of a growing tree: the roots of its maximal complete subtrees, left to
/// right. Enough to compute the root after every append in O(log n).
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    // (hash, level) of each maximal complete subtree, largest first.
    stack: Vec<(Hash, u32)>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _| {});
    }

    /// Appends a leaf hash, showing `completed` each subtree it completes (hash and level).
    fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(Hash, u32)) {
        self.size += 1;
        let mut top = (leaf, 0);
        while let Some(&(left, level)) = self.stack.last() {
            if level != top.1 {
                break;
            }
            self.stack.pop();
            top = (node_hash(&left, &top.0), level + 1);
            completed(top.0, top.1);
        }
        self.stack.push(top);
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `MTH` of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        let Some(&(mut root, _)) = subtrees.next() else {
            return EMPTY_ROOT;
        };
        for (left, _) in subtrees {
            root = node_hash(left, &root);
        }
        root
    }
}
