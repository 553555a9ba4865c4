package vm

import (
	"context"
	"testing"
)

// TestQEMUDriverRefusesWithoutImage: the QEMU driver reports a bad
// configuration as an error and a nil Machine (not an interface holding a
// nil *VM), before anything starts.
func TestQEMUDriverRefusesWithoutImage(t *testing.T) {
	var d Driver = QEMU{}
	if d.Name() != "qemu" {
		t.Errorf("name %q", d.Name())
	}
	m, err := d.Start(context.Background(), Config{Name: "x", RunRoot: t.TempDir()})
	if err == nil || m != nil {
		t.Fatalf("Start without an image: machine %v, error %v", m, err)
	}
}
