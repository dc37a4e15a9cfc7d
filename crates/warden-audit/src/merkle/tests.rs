//! Known answers and properties of the Merkle functions.
//!
//! The known answers are the classic eight-leaf vectors of Certificate Transparency (first in
//! Google's `certificate-transparency` C++ `merkle_tree_test.cc`), as published today in
//! `transparency-dev/merkle`: leaves, node hashes and roots from `testonly/constants.go`, proofs
//! from `proof/verify_test.go` (whose inclusion vectors number leaves from 1; here from 0).

use proptest::prelude::*;

use super::*;

fn h(hex: &str) -> Hash {
    let bytes = unhex(hex);
    bytes.try_into().expect("a 32-byte hash")
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `RootHashes()` of `testonly/constants.go`, by tree size 0 to 8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `inclusionProofs` of `proof/verify_test.go`: (leaf index from 0, tree size, path).
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, &[]),
];

/// `consistencyProofs` of `proof/verify_test.go`: (old size, new size, proof).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn kat_leaves() -> Vec<Hash> {
    LEAVES.iter().map(|l| leaf_hash(&unhex(l))).collect()
}

fn hashes(list: &[&str]) -> Vec<Hash> {
    list.iter().map(|x| h(x)).collect()
}

#[test]
fn leaf_hashes_match_the_published_level_zero() {
    let leaves = kat_leaves();
    assert_eq!(
        leaves[0],
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        leaves[7],
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")
    );
}

#[test]
fn roots_match_the_published_values_for_every_size() {
    let leaves = kat_leaves();
    let mut tree = Tree::new();
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(
            root(leaves.as_slice(), n as u64),
            h(want),
            "slice root at size {n}"
        );
        assert_eq!(tree.root(), h(want), "tree root at size {n}");
        assert_eq!(root(&tree, n as u64), h(want), "tiled root at size {n}");
        if n < leaves.len() {
            tree.push(leaves[n]);
        }
    }
}

#[test]
fn inclusion_proofs_match_the_published_paths_and_verify() {
    let leaves = kat_leaves();
    for &(index, size, path) in INCLUSION {
        let proof = inclusion_proof(leaves.as_slice(), index, size).expect("in range");
        assert_eq!(proof, hashes(path), "path of leaf {index} in tree {size}");
        let root = h(ROOTS[size as usize]);
        verify_inclusion(&leaves[index as usize], index, size, &proof, &root).expect("verifies");
    }
}

#[test]
fn consistency_proofs_match_the_published_proofs_and_verify() {
    let leaves = kat_leaves();
    for &(old, new, want) in CONSISTENCY {
        let proof = consistency_proof(leaves.as_slice(), old, new).expect("in range");
        assert_eq!(proof, hashes(want), "proof from {old} to {new}");
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        verify_consistency(old, new, &proof, &r1, &r2).expect("verifies");
    }
}

#[test]
fn degenerate_consistency_cases() {
    let r = h(ROOTS[3]);
    verify_consistency(0, 3, &[], &EMPTY_ROOT, &r).expect("anything extends the empty tree");
    assert!(verify_consistency(0, 3, &[r], &EMPTY_ROOT, &r).is_err());
    assert!(verify_consistency(3, 3, &[], &r, &h(ROOTS[4])).is_err());
    assert!(verify_consistency(4, 3, &[], &r, &r).is_err());
    assert!(verify_consistency(1, 2, &[], &h(ROOTS[1]), &h(ROOTS[2])).is_err());
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    let leaves = kat_leaves();
    assert!(inclusion_proof(leaves.as_slice(), 8, 8).is_err());
    assert!(inclusion_proof(leaves.as_slice(), 0, 9).is_err());
    assert!(consistency_proof(leaves.as_slice(), 5, 4).is_err());
    assert!(consistency_proof(leaves.as_slice(), 1, 9).is_err());
    assert!(verify_inclusion(&leaves[0], 0, 0, &[], &EMPTY_ROOT).is_err());
}

#[test]
fn the_tiled_tree_agrees_with_plain_hashing_across_tile_boundaries() {
    // 66_000 leaves cross the first level-1 tile (65_536 leaves), so level 2 exists.
    let leaves: Vec<Hash> = (0u32..66_000)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut tree = Tree::new();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    assert_eq!(tree.tile_level(1).len(), 66_000 / 256);
    assert_eq!(tree.tile_level(2).len(), 1);
    // Each hash of a tile level is the root of its 256 children below.
    for k in [1, 2] {
        let children = tree.tile_level(k - 1);
        for (i, hash) in tree.tile_level(k).iter().enumerate() {
            assert_eq!(
                *hash,
                super::perfect_root(&children[i * 256..(i + 1) * 256])
            );
        }
    }
    for n in [1, 255, 256, 257, 65_535, 65_536, 65_537, 66_000] {
        assert_eq!(root(&tree, n), root(leaves.as_slice(), n), "root at {n}");
    }
    assert_eq!(tree.root(), root(leaves.as_slice(), 66_000));
    for (index, size) in [
        (0, 66_000),
        (65_535, 65_537),
        (65_999, 66_000),
        (300, 70_000 - 4_000),
    ] {
        assert_eq!(
            inclusion_proof(&tree, index, size).expect("in range"),
            inclusion_proof(leaves.as_slice(), index, size).expect("in range")
        );
    }
    for (old, new) in [
        (1, 66_000),
        (256, 65_537),
        (65_536, 66_000),
        (1_000, 65_999),
    ] {
        assert_eq!(
            consistency_proof(&tree, old, new).expect("in range"),
            consistency_proof(leaves.as_slice(), old, new).expect("in range")
        );
    }
}

fn tree_of(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

fn flip(hash: &Hash, bit: u8) -> Hash {
    let mut h = *hash;
    h[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn inclusion_proofs_verify_and_alterations_fail(
        size in 1u64..600, at in any::<u64>(), bit in any::<u8>(), pick in any::<usize>(),
    ) {
        let leaves = tree_of(size);
        let index = at % size;
        let root = root(leaves.as_slice(), size);
        let leaf = leaves[index as usize];
        let proof = inclusion_proof(leaves.as_slice(), index, size).unwrap();
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());

        prop_assert!(verify_inclusion(&flip(&leaf, bit), index, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root, bit)).is_err());
        if size > 1 {
            let other = (index + 1 + pick as u64 % (size - 1)) % size;
            prop_assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
        }
        // Sizes whose audit paths have another length (a size with a same-length path can
        // accept the proof with a root no tree of that size has, as RFC 9162 allows).
        prop_assert!(verify_inclusion(&leaf, index, size * 2, &proof, &root).is_err());
        if index < size / 2 {
            prop_assert!(verify_inclusion(&leaf, index, size / 2, &proof, &root).is_err());
        }
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = pick % bad.len();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size, &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_alterations_fail(
        new in 1u64..600, at in any::<u64>(), bit in any::<u8>(), pick in any::<usize>(),
    ) {
        let leaves = tree_of(new);
        let old = 1 + at % new;
        let (r1, r2) = (root(leaves.as_slice(), old), root(leaves.as_slice(), new));
        let proof = consistency_proof(leaves.as_slice(), old, new).unwrap();
        prop_assert!(verify_consistency(old, new, &proof, &r1, &r2).is_ok());
        if old == new {
            return Ok(());
        }
        prop_assert!(verify_consistency(old, new, &proof, &flip(&r1, bit), &r2).is_err());
        prop_assert!(verify_consistency(old, new, &proof, &r1, &flip(&r2, bit)).is_err());
        // `new + 1` is left out: a larger tree of the same shape can accept the proof (with
        // a root no tree of that size has); see `altered_sizes_fail_exhaustively`.
        prop_assert!(verify_consistency(old, new * 2, &proof, &r1, &r2).is_err());
        if old > 1 {
            prop_assert!(verify_consistency(old - 1, new, &proof, &r1, &r2).is_err());
        }
        if old + 1 < new {
            prop_assert!(verify_consistency(old + 1, new, &proof, &r1, &r2).is_err());
        }
        let i = pick % proof.len();
        let mut bad = proof.clone();
        bad[i] = flip(&bad[i], bit);
        prop_assert!(verify_consistency(old, new, &bad, &r1, &r2).is_err());
        prop_assert!(verify_consistency(old, new, &proof[..proof.len() - 1], &r1, &r2).is_err());
        let mut longer = proof.clone();
        longer.push(r2);
        prop_assert!(verify_consistency(old, new, &longer, &r1, &r2).is_err());
    }

    #[test]
    fn frontier_and_tree_roots_equal_plain_roots(size in 0u64..1_100) {
        let leaves = tree_of(size);
        let mut tree = Tree::new();
        for leaf in &leaves {
            tree.push(*leaf);
        }
        prop_assert_eq!(tree.root(), root(leaves.as_slice(), size));
        prop_assert_eq!(root(&tree, size), root(leaves.as_slice(), size));
    }
}

/// Every proof for trees up to 64 leaves fails when a size is altered in a way that changes the
/// path's shape. (Not every alteration does: RFC 9162 verification binds the root, and a proof
/// for size 3 also "verifies" at size 4 against a root that no 4-leaf tree with these leaves
/// has. A signed checkpoint binds size and root together, which is what closes that gap.)
#[test]
fn altered_sizes_fail_exhaustively() {
    let leaves = tree_of(128);
    for size in 1..=64u64 {
        let r = root(leaves.as_slice(), size);
        for index in 0..size {
            let leaf = leaves[index as usize];
            let proof = inclusion_proof(leaves.as_slice(), index, size).unwrap();
            for (i, n) in [
                (index + 1, size),
                (index.wrapping_sub(1), size),
                (index, size * 2),
                (index, size / 2),
            ] {
                if i < n && (i, n) != (index, size) {
                    assert!(
                        verify_inclusion(&leaf, i, n, &proof, &r).is_err(),
                        "{index}/{size} as {i}/{n}"
                    );
                }
            }
        }
        for old in 1..size {
            let (r1, r2) = (root(leaves.as_slice(), old), r);
            let proof = consistency_proof(leaves.as_slice(), old, size).unwrap();
            for (o, n) in [
                (old - 1, size),
                (old + 1, size),
                (old, size * 2),
                (old, size / 2),
            ] {
                if o <= n && (o, n) != (old, size) {
                    assert!(
                        verify_consistency(o, n, &proof, &r1, &r2).is_err(),
                        "{old}->{size} as {o}->{n}"
                    );
                }
            }
        }
    }
}
