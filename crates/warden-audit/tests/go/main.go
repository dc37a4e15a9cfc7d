// An independent check of Warden's audit formats with Go's reference packages
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog. Built and run by
// tests/go_interop.rs; reads the files that test writes into the directory given as argument.
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go verifier: "+format+"\n", args...)
	os.Exit(1)
}

func read(dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		fail("%v", err)
	}
	return b
}

// openCheckpoint verifies a C2SP checkpoint note with the key and parses its body.
func openCheckpoint(v note.Verifier, msg []byte) (string, tlog.Tree) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint has fewer than three lines: %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size %q: %v", lines[1], err)
	}
	hash, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("checkpoint root %q: %v", lines[2], err)
	}
	return lines[0], tlog.Tree{N: size, Hash: hash}
}

// parseProof reads Warden's proof text: a format line, "key value" lines, hash lines, a blank
// line, and the checkpoint note.
func parseProof(text []byte) (map[string]string, []tlog.Hash, []byte) {
	i := bytes.Index(text, []byte("\n\n"))
	if i < 0 {
		fail("proof without a blank line")
	}
	head := strings.Split(string(text[:i]), "\n")
	fields := map[string]string{"format": head[0]}
	var hashes []tlog.Hash
	for _, line := range head[1:] {
		if k, v, ok := strings.Cut(line, " "); ok {
			fields[k] = v
			continue
		}
		h, err := tlog.ParseHash(line)
		if err != nil {
			fail("proof hash %q: %v", line, err)
		}
		hashes = append(hashes, h)
	}
	return fields, hashes, text[i+2:]
}

// dirTiles serves tiles from files laid out by tlog.Tile.Path (tile/8/L/NNN[.p/W]).
type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return 8 }

func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := os.ReadFile(filepath.Join(d.dir, t.Path()))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (d dirTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func sameHashes(what string, a, b []tlog.Hash) {
	if len(a) != len(b) {
		fail("%s: Go computes %d hashes, Warden gave %d", what, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			fail("%s: hash %d differs: Go %v, Warden %v", what, i, a[i], b[i])
		}
	}
}

func main() {
	dir := os.Args[1]
	v, err := note.NewVerifier(strings.TrimSpace(string(read(dir, "vkey.txt"))))
	if err != nil {
		fail("note.NewVerifier: %v", err)
	}
	origin, tree := openCheckpoint(v, read(dir, "checkpoint.note"))

	// Inclusion: C2SP tlog-proof with the leaf hash in the extra line.
	fields, inclusion, proofCheckpoint := parseProof(read(dir, "inclusion.txt"))
	if fields["format"] != "c2sp.org/tlog-proof@v1" {
		fail("inclusion proof format %q", fields["format"])
	}
	if _, t := openCheckpoint(v, proofCheckpoint); t != tree {
		fail("the inclusion proof's checkpoint is not the latest")
	}
	index, err := strconv.ParseInt(fields["index"], 10, 64)
	if err != nil {
		fail("index: %v", err)
	}
	leaf := tlog.RecordHash(read(dir, "record.bin"))
	if extra, _ := base64.StdEncoding.DecodeString(fields["extra"]); !bytes.Equal(extra, leaf[:]) {
		fail("the extra line is not the record's leaf hash")
	}
	if err := tlog.CheckRecord(tlog.RecordProof(inclusion), tree.N, tree.Hash, index, leaf); err != nil {
		fail("tlog.CheckRecord: %v", err)
	}

	// Consistency from an older checkpoint.
	fields, consistency, _ := parseProof(read(dir, "consistency.txt"))
	_, old := openCheckpoint(v, read(dir, "old.note"))
	if fields["old"] != fmt.Sprintf("%d %s", old.N, old.Hash) {
		fail("consistency proof starts at %q, old checkpoint is %d %s", fields["old"], old.N, old.Hash)
	}
	if err := tlog.CheckTree(tlog.TreeProof(consistency), tree.N, tree.Hash, old.N, old.Hash); err != nil {
		fail("tlog.CheckTree: %v", err)
	}

	// Tiles: authenticated against the checkpoint, then the same proofs computed by Go.
	hr := tlog.TileHashReader(tree, dirTiles{filepath.Join(dir, "tiles")})
	th, err := tlog.TreeHash(tree.N, hr)
	if err != nil || th != tree.Hash {
		fail("tlog.TreeHash from tiles: %v %v", th, err)
	}
	rp, err := tlog.ProveRecord(tree.N, index, hr)
	if err != nil {
		fail("tlog.ProveRecord: %v", err)
	}
	sameHashes("inclusion proof", rp, inclusion)
	tp, err := tlog.ProveTree(tree.N, old.N, hr)
	if err != nil {
		fail("tlog.ProveTree: %v", err)
	}
	sameHashes("consistency proof", tp, consistency)

	fmt.Printf("ok origin=%s size=%d index=%d inclusion=%d consistency=%d\n",
		origin, tree.N, index, len(inclusion), len(consistency))
}
