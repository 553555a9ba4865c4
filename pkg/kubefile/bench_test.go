package kubefile

import (
	"strings"
	"testing"
)

func BenchmarkParseEvaluate(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("FROM scratch\nARG V=1\n")
	for i := 0; i < 1000; i++ {
		sb.WriteString("COPY ${ARCH}/bin bin/\nLABEL a=$V b=\"x y\"\nENV k=v\n")
	}
	src := []byte(sb.String())
	ctx := testContext()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		f, _ := Parse("Kubefile", src)
		Evaluate(f, EvalOptions{Context: ctx})
	}
}

func BenchmarkLongLine(b *testing.B) {
	src := []byte("FROM scratch\nLAUNCH " + strings.Repeat("a ", 50000))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		Lint("Kubefile", src, EvalOptions{})
	}
}
