//! An independent verifier: Go's reference `golang.org/x/mod/sumdb/note` and `sumdb/tlog`
//! (Debian `golang-golang-x-mod-dev`) check Warden's checkpoint signature, an inclusion proof,
//! a consistency proof, and the tiles `Log::tile` serves — rebuilding both proofs from them.
//!
//! The Go program (`tests/go/main.go`) is built offline in GOPATH mode. Without `go` the test
//! is skipped loudly, except under `CI=true`, where it fails.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use warden_audit::{AuditedLog, Checkpoint, tile_path, tiles_for_size};

const GO_SOURCE: &str = include_str!("go/main.go");
const GOPATH: &str = "/usr/share/gocode";

fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds the Go verifier into `dir`, offline.
fn build_verifier(dir: &Path) -> PathBuf {
    fs::write(dir.join("main.go"), GO_SOURCE).unwrap();
    // A cache kept between runs (the target directory's), so x/mod compiles once.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build-cache");
    let binary = dir.join("warden-go-verifier");
    let out = Command::new("go")
        .current_dir(dir)
        .args(["build", "-o"])
        .arg(&binary)
        .arg("main.go")
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOCACHE", cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build failed (is golang-golang-x-mod-dev installed under {GOPATH}?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    binary
}

#[test]
fn go_sumdb_verifies_checkpoints_proofs_and_tiles() {
    if !go_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`go` is required in CI for the independent verifier test");
        }
        eprintln!(
            "\n*** SKIPPED go_sumdb_verifies_checkpoints_proofs_and_tiles: `go` is not installed ***\n"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (dir, work) = (tmp.path().join("audit"), tmp.path().join("go"));
    fs::create_dir_all(work.join("tiles")).unwrap();

    // 70 000 records: level-0, level-1 and level-2 tiles, full and partial (the C2SP example).
    let log = open(&dir);
    fill(&log, 999);
    let old = log.checkpoint_now().unwrap();
    fill(&log, 69_000);
    let note = log.checkpoint_now().unwrap();
    let size = Checkpoint::open(&note, &verifier()).unwrap().size;
    assert_eq!(size, 70_000);
    for (level, index, width) in tiles_for_size(size) {
        // Go's tile paths carry the height: tile/8/<L>/<N>[.p/<W>].
        let c2sp = tile_path(level, index, width);
        let path = work
            .join("tiles")
            .join(c2sp.replacen("tile/", "tile/8/", 1));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, log.tile(level, index, width).unwrap()).unwrap();
    }
    log.close().unwrap();

    let audited = AuditedLog::open(&dir, &verifier(), None, Default::default()).unwrap();
    assert_eq!(audited.checkpoint_note(), Some(note.as_str()));
    let seq = 12_345;
    fs::write(work.join("vkey.txt"), verifier().to_string()).unwrap();
    fs::write(work.join("checkpoint.note"), &note).unwrap();
    fs::write(work.join("old.note"), &old).unwrap();
    fs::write(work.join("record.bin"), audited.record_bytes(seq).unwrap()).unwrap();
    fs::write(
        work.join("inclusion.txt"),
        audited.prove_inclusion(seq).unwrap().to_text(),
    )
    .unwrap();
    fs::write(
        work.join("consistency.txt"),
        audited.prove_consistency(1000).unwrap().to_text(),
    )
    .unwrap();

    let verifier_binary = build_verifier(&work);
    let out = Command::new(verifier_binary).arg(&work).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Go rejected Warden's log:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("ok origin=warden.test/audit size=70000 index=12345"),
        "{stdout}"
    );

    // And Go notices a forgery: a checkpoint with another root under the same signature.
    let forged = note.replacen(
        note.lines().nth(2).unwrap(),
        &format!("{}=", "A".repeat(43)),
        1,
    );
    fs::write(work.join("checkpoint.note"), forged).unwrap();
    let out = Command::new(work.join("warden-go-verifier"))
        .arg(&work)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid signature"));
}
