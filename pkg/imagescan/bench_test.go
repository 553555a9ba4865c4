package imagescan

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func BenchmarkScanFixture(b *testing.B) {
	fsys := os.DirFS("testdata/rootfs")
	opts := fixtureOptions()
	for b.Loop() {
		if _, err := Scan(b.Context(), fsys, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanStream scans a 2,000-document manifest of Deployments.
func BenchmarkScanStream(b *testing.B) {
	var sb strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&sb, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d%d\n  labels: {app: d%d}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: init\n        image: busybox:1.36\n      containers:\n      - name: app\n        image: example/app%d:1.0\n        ports: [{containerPort: 8080}]\n        env: [{name: A, value: b}]\n", i, i, i)
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		n := 0
		if err := scanStream(strings.NewReader(data), func(int, hit) { n++ }); err != nil || n != 4000 {
			b.Fatal(n, err)
		}
	}
}
