package bundle

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cnstack/cnstack/internal/atomicfile"
	"github.com/cnstack/cnstack/pkg/store"
)

// partName is the file name of part i of a split bundle.
func partName(base string, i int) string { return fmt.Sprintf("%s.%03d", base, i) }

// sumsName lists the sha256 of every part (sha256sum format).
func sumsName(base string) string { return base + ".sha256" }

// output writes a bundle atomically: to temp files renamed into place on
// Commit, split into parts of at most split bytes when split > 0, hashing
// each. The temp files are hidden beside the output and recorded in the
// store (store.TempRecord), so a save that is killed leaves nothing behind
// after the next cnstack command opens the store.
type output struct {
	base    string
	split   int64
	rec     *store.TempRecord
	cur     *os.File
	curHash hash.Hash
	curN    int64
	tmp     []string // temp names in order
	sums    []string // hex sha256 per part
	total   int64
}

func newOutput(base string, split int64, rec *store.TempRecord) (*output, error) {
	o := &output{base: base, split: split, rec: rec}
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return nil, err
	}
	// A killed save's temp files are gone already: opening the store
	// removed what its record listed.
	return o, o.next()
}

func (o *output) next() error {
	if o.cur != nil {
		if err := o.cur.Close(); err != nil {
			return err
		}
		o.sums = append(o.sums, hex.EncodeToString(o.curHash.Sum(nil)))
	}
	// The name is recorded before the file exists, so no kill leaves an
	// unrecorded temp file.
	var rnd [6]byte
	rand.Read(rnd[:])
	name := filepath.Join(filepath.Dir(o.base), fmt.Sprintf(".%s.%d-%x.tmp", filepath.Base(o.base), len(o.tmp), rnd))
	if err := o.rec.Add(name); err != nil {
		return fmt.Errorf("record temp file: %w", err)
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644) // a bundle is meant to be carried and read by others
	if err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil { // whatever the umask
		f.Close()
		return err
	}
	o.cur, o.curHash, o.curN = f, sha256.New(), 0
	o.tmp = append(o.tmp, f.Name())
	return nil
}

func (o *output) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if o.split > 0 && o.curN+int64(len(chunk)) > o.split {
			chunk = p[:o.split-o.curN]
		}
		n, err := o.cur.Write(chunk)
		o.curHash.Write(chunk[:n])
		o.curN += int64(n)
		o.total += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
		if o.split > 0 && o.curN == o.split && len(p) > 0 {
			if err := o.next(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// Commit closes the last part and renames everything into place. Stale
// parts of an earlier, longer save under the same name are removed.
func (o *output) Commit() ([]string, error) {
	if err := o.cur.Close(); err != nil {
		return nil, err
	}
	o.sums = append(o.sums, hex.EncodeToString(o.curHash.Sum(nil)))
	var names []string
	if o.split <= 0 {
		if err := os.Rename(o.tmp[0], o.base); err != nil {
			return nil, err
		}
		return []string{o.base}, nil
	}
	var sb strings.Builder
	for i, t := range o.tmp {
		name := partName(o.base, i)
		if err := os.Rename(t, name); err != nil {
			return nil, err
		}
		names = append(names, name)
		fmt.Fprintf(&sb, "%s  %s\n", o.sums[i], filepath.Base(name))
	}
	for i := len(o.tmp); ; i++ {
		if err := os.Remove(partName(o.base, i)); err != nil {
			break
		}
	}
	os.Remove(o.base) // an unsplit bundle of the same name would shadow the parts
	if err := atomicfile.WriteFile(sumsName(o.base), []byte(sb.String()), 0o644); err != nil {
		return nil, err
	}
	return append(names, sumsName(o.base)), nil
}

// Abort removes the temp files.
func (o *output) Abort() {
	if o.cur != nil {
		o.cur.Close()
	}
	for _, t := range o.tmp {
		os.Remove(t)
	}
}

// input opens a bundle for reading: FILE itself, or its parts FILE.000,
// FILE.001, … (checked against FILE.sha256 while they are read).
type input struct {
	files []string
	sums  map[string]string // base name -> expected hex
}

func openInput(path string) (*input, error) {
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		return &input{files: []string{path}}, nil
	}
	parts, _ := filepath.Glob(path + ".[0-9][0-9][0-9]")
	if len(parts) == 0 {
		return nil, fmt.Errorf("bundle %s: no such file, and no parts %s.000…", path, path)
	}
	sort.Strings(parts)
	for i, p := range parts {
		if p != partName(path, i) {
			return nil, fmt.Errorf("bundle %s: part %s is missing", path, partName(path, i))
		}
	}
	in := &input{files: parts, sums: map[string]string{}}
	f, err := os.Open(sumsName(path))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: parts without their checksum list %s: %w", path, sumsName(path), err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 {
			in.sums[fields[1]] = fields[0]
		}
	}
	for _, p := range parts {
		if _, ok := in.sums[filepath.Base(p)]; !ok {
			return nil, fmt.Errorf("bundle %s: %s is not listed in %s", path, filepath.Base(p), sumsName(path))
		}
	}
	return in, nil
}

// ErrPartCorrupt marks a part whose sha256 differs from the list.
var ErrPartCorrupt = errors.New("bundle part is corrupt")

// reader returns the parts as one stream; a part whose checksum is wrong
// fails the read at its end, naming the part.
func (in *input) reader() (io.ReadCloser, error) {
	var readers []io.Reader
	var closers []io.Closer
	for _, p := range in.files {
		f, err := os.Open(p)
		if err != nil {
			for _, c := range closers {
				c.Close()
			}
			return nil, err
		}
		closers = append(closers, f)
		if want, ok := in.sums[filepath.Base(p)]; ok {
			readers = append(readers, &checkedPart{r: f, name: p, want: want, h: sha256.New()})
		} else {
			readers = append(readers, f)
		}
	}
	return &multiCloser{Reader: io.MultiReader(readers...), closers: closers}, nil
}

// size is the total size of the parts.
func (in *input) size() int64 {
	var n int64
	for _, p := range in.files {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

type checkedPart struct {
	r    io.Reader
	name string
	want string
	h    hash.Hash
}

func (c *checkedPart) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, fmt.Errorf("%w: %s has sha256 %s, the part list says %s", ErrPartCorrupt, c.name, got, c.want)
		}
	}
	return n, err
}

type multiCloser struct {
	io.Reader
	closers []io.Closer
}

func (m *multiCloser) Close() error {
	var errs []error
	for _, c := range m.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
