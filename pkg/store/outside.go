package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cnstack/cnstack/internal/filelock"
)

// outsidePrefix names the records of temp files kept outside the store.
const outsidePrefix = "outside-"

// TempRecord tracks the temp files a writer creates outside the store (the
// hidden parts of a bundle being saved next to its output). The record is
// a small file in the store's ingest/ that the writer holds locked; when
// the writer is killed, the lock is free and the next Open or Prune of the
// store removes the files it lists.
//
// The record is appended to, one JSON string a line, never rewritten: a
// writer killed in the middle of Add leaves at worst a torn last line
// (whose file it had not created yet), never a record emptied by a
// truncate whose rewrite did not happen.
type TempRecord struct {
	mu sync.Mutex
	f  *os.File
}

// TrackTemps starts a record. Call Add for each temp file before writing
// to it, and Done when the files are renamed into place or removed.
func (s *Store) TrackTemps() (*TempRecord, error) {
	for attempt := 0; ; attempt++ {
		f, err := os.CreateTemp(filepath.Join(s.root, ingestDir), outsidePrefix+"*.json")
		if err != nil {
			return nil, fmt.Errorf("record temp files: %w", err)
		}
		if err := filelock.LockFile(f); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("record temp files: %w", err)
		}
		if sameFile(f) {
			return &TempRecord{f: f}, nil
		}
		f.Close()
		if attempt > 10 {
			return nil, fmt.Errorf("record temp files: files in %s keep vanishing", filepath.Join(s.root, ingestDir))
		}
	}
}

// Add records path (absolute) as a temp file of this writer.
func (r *TempRecord) Add(path string) error {
	if r == nil {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	line, err := json.Marshal(abs)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.Write(append(line, '\n')); err != nil {
		return err
	}
	return r.f.Sync()
}

// Done ends the record (the files are dealt with).
func (r *TempRecord) Done() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		os.Remove(r.f.Name())
		r.f.Close()
		r.f = nil
	}
}

// isOutsideTemp is what a record may name: a hidden temp file (".name.….tmp").
// Anything else in a record (a damaged or forged one) is left alone.
func isOutsideTemp(p string) bool {
	base := filepath.Base(p)
	return filepath.IsAbs(p) && strings.HasPrefix(base, ".") && strings.HasSuffix(base, ".tmp")
}

// cleanOutside removes the temp files listed by records whose writer died.
func (s *Store) cleanOutside() (n int, bytes int64) {
	dir := filepath.Join(s.root, ingestDir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), outsidePrefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if ok, _ := filelock.TryLockFile(f); !ok || !sameFile(f) {
			f.Close()
			continue
		}
		b, _ := os.ReadFile(p)
		for _, t := range recordedPaths(b) {
			fi, err := os.Lstat(t)
			if err != nil || !fi.Mode().IsRegular() || !isOutsideTemp(t) {
				continue
			}
			if os.Remove(t) == nil {
				n++
				bytes += fi.Size()
			}
		}
		os.Remove(p)
		f.Close()
	}
	return n, bytes
}

// recordedPaths reads a record: one JSON string a line (a torn last line
// is skipped), or the JSON array earlier versions rewrote on every Add.
func recordedPaths(b []byte) []string {
	var paths []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var one string
		var many []string
		switch {
		case json.Unmarshal(line, &one) == nil:
			paths = append(paths, one)
		case json.Unmarshal(line, &many) == nil:
			paths = append(paths, many...)
		}
	}
	return paths
}
