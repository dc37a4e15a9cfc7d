//! C2SP tlog-tiles hash tiles (<https://c2sp.org/tlog-tiles>), height 8.
//!
//! Tile `N` at level `L` is the concatenation of 256 hashes at tree level `8L`: leaf hashes at
//! level 0, and above, the roots of the full tiles of the level below. A partial tile holds the
//! first `W` (1 to 255) of them. The log serves tiles from its in-memory [`Tree`], whose tile
//! levels are exactly this data; they are derived, so nothing is stored on disk.

use crate::Error;
use crate::merkle::{TILE_HEIGHT, TILE_WIDTH, Tree};

/// The bytes of tile `index` at `level`: full when `width` is `None`, else the partial tile of
/// `width` hashes (1 to 255). Only tiles the tree already holds are served.
pub fn tile_bytes(
    tree: &Tree,
    level: u8,
    index: u64,
    width: Option<u16>,
) -> Result<Vec<u8>, Error> {
    let w = width.unwrap_or(TILE_WIDTH as u16);
    let no = |reason| Error::NoSuchTile {
        level,
        index,
        width: w,
        reason,
    };
    if width.is_some_and(|w| w == 0 || w as usize >= TILE_WIDTH) {
        return Err(no("a partial tile has 1 to 255 hashes"));
    }
    let hashes = tree.tile_level(level as usize);
    let start = index
        .checked_mul(TILE_WIDTH as u64)
        .ok_or_else(|| no("the index is too large"))?;
    let end = start + u64::from(w);
    if end > hashes.len() as u64 {
        return Err(no("the tree does not hold it yet"));
    }
    Ok(hashes[start as usize..end as usize].concat())
}

/// A tile's path in the C2SP layout: `tile/<L>/<N>[.p/<W>]`, `N` in 3-digit path elements
/// with `x` before all but the last (`tile/0/x001/x234/067.p/8`).
pub fn tile_path(level: u8, index: u64, width: Option<u16>) -> String {
    let mut groups = Vec::new();
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut path = format!("tile/{level}");
    for (i, group) in groups.iter().enumerate().rev() {
        let x = if i == 0 { "" } else { "x" };
        path.push_str(&format!("/{x}{group:03}"));
    }
    if let Some(w) = width {
        path.push_str(&format!(".p/{w}"));
    }
    path
}

/// The tiles that make up the tree of `size` records: every full tile, then the partial tile
/// at each level that has one (C2SP: `floor(size / 256^L) mod 256` hashes).
pub fn tiles_for_size(size: u64) -> Vec<(u8, u64, Option<u16>)> {
    let mut tiles = Vec::new();
    let mut level = 0u8;
    loop {
        let hashes = size >> (TILE_HEIGHT * u32::from(level));
        if hashes == 0 {
            break;
        }
        let full = hashes / TILE_WIDTH as u64;
        tiles.extend((0..full).map(|n| (level, n, None)));
        let partial = (hashes % TILE_WIDTH as u64) as u16;
        if partial > 0 {
            tiles.push((level, full, Some(partial)));
        }
        level += 1;
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_c2sp_examples() {
        assert_eq!(tile_path(0, 1_234_067, None), "tile/0/x001/x234/067");
        assert_eq!(tile_path(4, 1_234_067, Some(1)), "tile/4/x001/x234/067.p/1");
        assert_eq!(tile_path(1, 0, Some(17)), "tile/1/000.p/17");
    }

    #[test]
    fn a_tree_of_70000_has_the_tiles_the_spec_lists() {
        // C2SP: 273 full level-0 tiles, a partial of 112, a full level-1 tile, a partial of
        // 17, and a level-2 partial of 1.
        let tiles = tiles_for_size(70_000);
        assert_eq!(
            tiles.iter().filter(|t| t.0 == 0 && t.2.is_none()).count(),
            273
        );
        assert!(tiles.contains(&(0, 273, Some(112))));
        assert!(tiles.contains(&(1, 0, None)) && tiles.contains(&(1, 1, Some(17))));
        assert!(tiles.contains(&(2, 0, Some(1))));
        assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
        assert_eq!(tiles_for_size(256), [(0, 0, None), (1, 0, Some(1))]);
    }
}
