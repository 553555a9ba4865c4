package ctxio

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCopy(t *testing.T) {
	var out bytes.Buffer
	var seen int64
	n, err := Copy(context.Background(), &out, strings.NewReader(strings.Repeat("x", 600<<10)), func(k int64) { seen += k })
	if err != nil || n != 600<<10 || seen != n || out.Len() != int(n) {
		t.Fatalf("n=%d seen=%d err=%v", n, seen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Copy(ctx, &out, strings.NewReader("x"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
}
