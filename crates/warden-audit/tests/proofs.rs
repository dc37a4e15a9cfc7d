//! Proofs and tiles, from the live log and from an audited directory, as text and back.

mod common;

use common::*;
use warden_audit::merkle::{self, Hash, leaf_hash};
use warden_audit::{AuditedLog, Checkpoint, ConsistencyProof, Error, InclusionProof};

#[test]
fn the_live_logs_proofs_verify_against_its_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&tmp.path().join("audit"));
    fill(&log, 40);
    let old = Checkpoint::open(&log.checkpoint_now().unwrap(), &verifier()).unwrap();
    fill(&log, 300);
    let new = Checkpoint::open(&log.checkpoint_now().unwrap(), &verifier()).unwrap();
    let tree: Vec<Hash> = (0..new.size).map(|s| leaf_of(&log, s)).collect();
    for seq in [0, 1, 40, 255, 256, new.size - 1] {
        let proof = log.inclusion_proof(seq, new.size).unwrap();
        merkle::verify_inclusion(&tree[seq as usize], seq, new.size, &proof, &new.root).unwrap();
    }
    let proof = log.consistency_proof(old.size, new.size).unwrap();
    merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root).unwrap();
    assert!(matches!(
        log.inclusion_proof(new.size, new.size),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        log.inclusion_proof(0, new.size + 1_000),
        Err(Error::OutOfRange { .. })
    ));
    log.close().unwrap();
}

/// A record's leaf hash, from its level-0 tile.
fn leaf_of(log: &warden_audit::Log, seq: u64) -> Hash {
    let full = log.tile(0, seq / 256, None);
    let tile = full.unwrap_or_else(|_| {
        log.tile(0, seq / 256, Some((log.size() % 256) as u16))
            .unwrap()
    });
    let at = (seq % 256) as usize * 32;
    tile[at..at + 32].try_into().unwrap()
}

#[test]
fn tiles_hold_leaf_hashes_and_the_roots_of_full_tiles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir);
    fill(&log, 599); // 600 records: two full level-0 tiles and a partial of 88
    let audited = AuditedLog::open(
        &dir,
        &verifier(),
        None,
        warden_audit::VerifyOptions {
            allow_unsigned_tail: true,
        },
    )
    .unwrap();
    let leaves: Vec<Hash> = (0..600)
        .map(|s| leaf_hash(&audited.record_bytes(s).unwrap()))
        .collect();
    assert_eq!(log.tile(0, 0, None).unwrap(), leaves[..256].concat());
    assert_eq!(log.tile(0, 2, Some(88)).unwrap(), leaves[512..600].concat());
    let level1 = log.tile(1, 0, Some(2)).unwrap();
    assert_eq!(level1[..32], merkle::root(&leaves[..256], 256));
    assert_eq!(level1[32..], merkle::root(&leaves[256..512], 256));
    for (level, index, width) in [
        (0, 2, None),
        (0, 2, Some(89)),
        (1, 0, None),
        (0, 0, Some(0)),
        (0, 0, Some(256)),
    ] {
        assert!(
            matches!(log.tile(level, index, width), Err(Error::NoSuchTile { .. })),
            "{level}/{index}/{width:?}"
        );
    }
    log.close().unwrap();
}

#[test]
fn proof_texts_round_trip_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 30);
    let trusted = std::fs::read_to_string(dir.join("checkpoint")).unwrap();
    let log = open(&dir);
    fill(&log, 70);
    log.close().unwrap();
    let audited = AuditedLog::open(&dir, &verifier(), None, Default::default()).unwrap();

    let proof = audited.prove_inclusion(17).unwrap();
    let text = proof.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    assert!(text.contains("\nindex 17\n"), "{text}");
    assert!(text.ends_with(audited.checkpoint_note().unwrap()), "{text}");
    let parsed = InclusionProof::parse(&text).unwrap();
    assert_eq!(parsed, proof);
    let record = audited.record_bytes(17).unwrap();
    let checkpoint = parsed.verify_record(&verifier(), &record).unwrap();
    assert_eq!(checkpoint.size, 102);
    assert!(
        parsed
            .verify_record(&verifier(), &audited.record_bytes(18).unwrap())
            .is_err()
    );

    let proof = audited.prove_consistency(31).unwrap();
    let text = proof.to_text();
    assert!(
        text.starts_with("warden-audit/consistency-proof@v1\nold 31 "),
        "{text}"
    );
    let parsed = ConsistencyProof::parse(&text).unwrap();
    assert_eq!(parsed, proof);
    assert_eq!(parsed.verify_from(&verifier(), &trusted).unwrap().size, 102);
}

#[test]
fn altered_proof_texts_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    closed_log(&dir, 50);
    let audited = AuditedLog::open(&dir, &verifier(), None, Default::default()).unwrap();
    let text = audited.prove_inclusion(9).unwrap().to_text();

    let other_index = text.replace("\nindex 9\n", "\nindex 10\n");
    let proof = InclusionProof::parse(&other_index).unwrap();
    assert!(matches!(
        proof.verify(&verifier()),
        Err(Error::ProofInvalid(_))
    ));

    let hash_line = text.lines().nth(3).unwrap();
    let flipped = text.replacen(hash_line, &format!("{}=", "A".repeat(43)), 1);
    let proof = InclusionProof::parse(&flipped).unwrap();
    assert!(matches!(
        proof.verify(&verifier()),
        Err(Error::ProofInvalid(_))
    ));

    let resized = text.replacen("\n51\n", "\n50\n", 1);
    let proof = InclusionProof::parse(&resized).unwrap();
    assert!(matches!(
        proof.verify(&verifier()),
        Err(Error::BadSignature { .. })
    ));

    for (bad, why) in [
        ("", "blank line"),
        ("c2sp.org/tlog-proof@v2\nindex 1\n\nx", "format"),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\nx", "extra"),
        (
            "c2sp.org/tlog-proof@v1\nextra AAAA\nindex 1\n\nx",
            "leaf hash",
        ),
    ] {
        let err = InclusionProof::parse(bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}
