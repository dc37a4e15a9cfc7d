//! Each way of tampering with a closed log is caught by `verify_dir`, with a message that
//! points at the damage.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use warden_audit::{Checkpoint, Kind, Record, Signer, VerifyError, verify_dir};

/// A closed log of the start record and 20 requests (seqs 0 to 20), checkpointed at 1 and 21.
fn log_of_21() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("audit");
    closed_log(&dir, 20);
    let report = verify_dir(&dir, &verifier(), None).expect("an untouched log verifies");
    assert_eq!(
        (report.records, report.checkpoints, report.unsigned_tail),
        (21, 2, 0)
    );
    (tmp, dir)
}

fn only_segment(dir: &Path) -> std::path::PathBuf {
    let segments = segments(dir);
    assert_eq!(segments.len(), 1);
    segments[0].clone()
}

fn verify_err(dir: &Path) -> (VerifyError, String) {
    let err = verify_dir(dir, &verifier(), None).expect_err("tampering is detected");
    let text = err.to_string();
    (err, text)
}

#[test]
fn a_flipped_byte_inside_a_record() {
    let (_tmp, dir) = log_of_21();
    let seg = only_segment(&dir);
    let (offset, _) = frames(&seg)[5];
    let mut data = fs::read(&seg).unwrap();
    data[offset + 10] ^= 0x20;
    fs::write(&seg, data).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(err, VerifyError::BadFrame { seq: 5, .. }),
        "{text}"
    );
    assert!(text.contains("00000000000000000000.seg"), "{text}");
    assert!(
        text.contains(&format!("at byte {offset}")) && text.contains("seq 5"),
        "{text}"
    );
    assert!(text.contains("checksum"), "{text}");
}

#[test]
fn a_deleted_record() {
    let (_tmp, dir) = log_of_21();
    let seg = only_segment(&dir);
    let (offset, len) = frames(&seg)[7];
    let mut data = fs::read(&seg).unwrap();
    data.drain(offset..offset + len);
    fs::write(&seg, data).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(
            err,
            VerifyError::WrongSeq {
                expected: 7,
                found: 8,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("at byte {offset}")) && text.contains("record 7"),
        "{text}"
    );
    assert!(text.contains("says seq 8"), "{text}");
}

#[test]
fn two_swapped_records() {
    let (_tmp, dir) = log_of_21();
    let seg = only_segment(&dir);
    let f = frames(&seg);
    let ((a, alen), (b, blen)) = (f[9], f[10]);
    let data = fs::read(&seg).unwrap();
    let mut swapped = data[..a].to_vec();
    swapped.extend_from_slice(&data[b..b + blen]);
    swapped.extend_from_slice(&data[a..a + alen]);
    swapped.extend_from_slice(&data[b + blen..]);
    fs::write(&seg, swapped).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(
            err,
            VerifyError::WrongSeq {
                expected: 9,
                found: 10,
                ..
            }
        ),
        "{text}"
    );
}

#[test]
fn a_truncated_segment_at_a_frame_boundary() {
    let (_tmp, dir) = log_of_21();
    let seg = only_segment(&dir);
    let (offset, _) = frames(&seg)[12];
    let file = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len(offset as u64).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(
            err,
            VerifyError::MissingRecords {
                size: 21,
                records: 12,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("from seq 12 on"), "{text}");
}

#[test]
fn a_truncated_segment_inside_a_frame() {
    let (_tmp, dir) = log_of_21();
    let seg = only_segment(&dir);
    let (offset, _) = frames(&seg)[12];
    let file = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len(offset as u64 + 6).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(err, VerifyError::BadFrame { seq: 12, .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!("at byte {offset}")) && text.contains("incomplete"),
        "{text}"
    );
}

#[test]
fn a_record_appended_after_the_last_checkpoint_by_another_writer() {
    let (_tmp, dir) = log_of_21();
    let seg = only_segment(&dir);
    let mut planted = Record::new(Kind::Admin, "2025-06-01T12:00:01.000Z".into());
    planted.seq = 21;
    planted.outcome = Some("grant_everything".into());
    let mut data = fs::read(&seg).unwrap();
    data.extend_from_slice(&frame(&planted));
    fs::write(&seg, data).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(
            err,
            VerifyError::UnsignedTail {
                first: 21,
                last: 21
            }
        ),
        "{text}"
    );
    assert!(text.contains("from seq 21"), "{text}");
}

#[test]
fn a_forged_checkpoint_keeping_the_signature() {
    let (_tmp, dir) = log_of_21();
    for target in [
        dir.join("checkpoint"),
        dir.join("checkpoints/00000000000000000021"),
    ] {
        let genuine = fs::read_to_string(&target).unwrap();
        for forged in [
            genuine.replacen("\n21\n", "\n20\n", 1),
            genuine.replacen(
                genuine.lines().nth(2).unwrap(),
                &format!("{}=", "A".repeat(43)),
                1,
            ),
        ] {
            assert_ne!(forged, genuine);
            fs::write(&target, &forged).unwrap();
            let (err, text) = verify_err(&dir);
            assert!(matches!(err, VerifyError::BadCheckpoint { .. }), "{text}");
            assert!(
                text.contains(target.file_name().unwrap().to_str().unwrap()),
                "{text}"
            );
        }
        fs::write(&target, genuine).unwrap();
    }
    verify_dir(&dir, &verifier(), None).expect("restored");
}

#[test]
fn a_checkpoint_signed_with_another_key() {
    let (_tmp, dir) = log_of_21();
    let impostor = Signer::from_seed(ORIGIN, [2; 32]).unwrap();
    let genuine = fs::read_to_string(dir.join("checkpoint")).unwrap();
    let body = Checkpoint::open(&genuine, &verifier()).unwrap();
    fs::write(dir.join("checkpoint"), body.sign(&impostor).unwrap()).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(matches!(err, VerifyError::BadCheckpoint { .. }), "{text}");
    let expected = format!("{ORIGIN}+{:08x}", verifier().key_id());
    let found = format!("{ORIGIN}+{:08x}", impostor.key_id());
    assert!(text.contains(&expected) && text.contains(&found), "{text}");
    assert!(text.contains("checkpoint:"), "names the file: {text}");
}

#[test]
fn a_rolled_back_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, old_copy) = (tmp.path().join("audit"), tmp.path().join("copy"));
    closed_log(&dir, 10);
    copy_dir(&dir, &old_copy);
    let log = open(&dir);
    fill(&log, 5);
    let newer = log.checkpoint_now().unwrap();
    log.close().unwrap();

    verify_dir(&dir, &verifier(), Some(&newer)).expect("the live log extends the newer checkpoint");
    // The old copy is internally consistent: only the trusted checkpoint reveals the rollback.
    verify_dir(&old_copy, &verifier(), None).expect("consistent on its own");
    let err = verify_dir(&old_copy, &verifier(), Some(&newer)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::RolledBack {
                size: 17,
                records: 11
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("rolled back"), "{err}");
}

#[test]
fn a_rewritten_log_of_the_same_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (honest, rewritten) = (tmp.path().join("honest"), tmp.path().join("rewritten"));
    closed_log(&honest, 10);
    let trusted = fs::read_to_string(honest.join("checkpoint")).unwrap();
    // Whoever holds the key can sign a different history of the same length.
    let log = open(&rewritten);
    for i in 0..12 {
        let mut r = record(i);
        r.outcome = Some("deny".into());
        log.append_blocking(r).unwrap();
    }
    log.close().unwrap();
    let err = verify_dir(&rewritten, &verifier(), Some(&trusted)).unwrap_err();
    assert!(matches!(err, VerifyError::Forked { size: 11, .. }), "{err}");
    assert!(err.to_string().contains("rewritten"), "{err}");
}

#[test]
fn a_trusted_checkpoint_of_another_key_is_refused() {
    let (_tmp, dir) = log_of_21();
    let impostor = Signer::from_seed(ORIGIN, [3; 32]).unwrap();
    let forged = Checkpoint::new(ORIGIN, 5, [0; 32]).sign(&impostor).unwrap();
    let err = verify_dir(&dir, &verifier(), Some(&forged)).unwrap_err();
    assert!(matches!(err, VerifyError::BadTrusted(_)), "{err}");
}

#[test]
fn a_stray_or_misnamed_file_is_named() {
    let (_tmp, dir) = log_of_21();
    let genuine = dir.join("checkpoints/00000000000000000021");
    let misnamed = dir.join("checkpoints/00000000000000000030");
    fs::rename(&genuine, &misnamed).unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(
            err,
            VerifyError::MisnamedCheckpoint {
                named: 30,
                size: 21,
                ..
            }
        ),
        "{text}"
    );
    fs::rename(&misnamed, &genuine).unwrap();
    fs::write(dir.join("segments/notes.txt"), "hello").unwrap();
    let (err, text) = verify_err(&dir);
    assert!(
        matches!(err, VerifyError::StrayFile { .. }) && text.contains("notes.txt"),
        "{text}"
    );
}
