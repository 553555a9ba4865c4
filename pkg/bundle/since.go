package bundle

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cnstack/cnstack/pkg/store"
)

// BlobsOfSince is the OLD side of a delta (`save --since OLD…`): one name
// that is a bundle file (or the FILE of FILE.000, FILE.001, …) is an
// earlier bundle, read with BlobsOfBundle; anything else names store
// images, read with BlobsOfRefs.
func BlobsOfSince(ctx context.Context, s *store.Store, since []string) (map[digest.Digest]bool, error) {
	if len(since) == 1 && isBundleFile(since[0]) {
		return BlobsOfBundle(ctx, since[0])
	}
	return BlobsOfRefs(ctx, s, since)
}

// isBundleFile reports whether p names a bundle on disk: a file, or the
// first part of a split one.
func isBundleFile(p string) bool {
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return true
	}
	_, err := os.Stat(partName(p, 0))
	return err == nil
}

// ParseSize reads a part size for SaveOptions.Split: a number of bytes with
// an optional K, M, G or T (binary units; "4G", "700M", "1GiB"). "" is 0,
// one file.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	u := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I"))
	switch {
	case strings.HasSuffix(u, "K"):
		mult, u = 1<<10, strings.TrimSuffix(u, "K")
	case strings.HasSuffix(u, "M"):
		mult, u = 1<<20, strings.TrimSuffix(u, "M")
	case strings.HasSuffix(u, "G"):
		mult, u = 1<<30, strings.TrimSuffix(u, "G")
	case strings.HasSuffix(u, "T"):
		mult, u = 1<<40, strings.TrimSuffix(u, "T")
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size like 700M or 4G", s)
	}
	return n * mult, nil
}
