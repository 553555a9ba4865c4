package tailbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestKeepsTheTail(t *testing.T) {
	for _, tc := range []struct {
		max    int
		writes []string
		want   string
	}{
		{10, []string{"abc"}, "abc"},
		{5, []string{"abc", "defg"}, "cdefg"},
		{4, []string{"0123456789"}, "6789"},
		{3, nil, ""},
	} {
		b := New(tc.max)
		for _, w := range tc.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := b.String(); got != tc.want {
			t.Errorf("max %d, writes %q: %q, want %q", tc.max, tc.writes, got, tc.want)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	b := New(64)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(b, "%d", i)
			}
		})
	}
	wg.Wait()
	if s := b.String(); len(s) != 64 || strings.Trim(s, "01234567") != "" {
		t.Errorf("tail %q", s)
	}
}
