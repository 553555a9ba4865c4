package stack

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultDir is the directory the commands that read Kubefiles without a
// build context argument work on (lint, stack, lock, images why): "." when
// it holds a stack.yaml or a Kubefile, else "Kubefiles" (the repository
// layout) when that is a directory, else ".".
func DefaultDir() string {
	if exists(FileName) || exists("Kubefile") {
		return "."
	}
	if fi, err := os.Stat("Kubefiles"); err == nil && fi.IsDir() {
		return "Kubefiles"
	}
	return "."
}

// Target is what a command that reads Kubefiles without building works on:
// a stack directory, or one build context.
type Target struct {
	// Dir is the directory as named (where cnstack.lock lives): the stack
	// directory, or the build context.
	Dir string
	// Stack is the loaded stack of a stack directory; nil for a build context.
	Stack *Stack
	// Kubefiles are what the target builds: each layer of a stack, or the
	// one Kubefile of a build context.
	Kubefiles []Kubefile
}

// Kubefile is one Kubefile of a target with its build context and the
// build args it is evaluated with.
type Kubefile struct {
	Path      string // the Kubefile
	Context   string // its build context directory
	BuildArgs map[string]string
}

// OpenTarget reads path: a stack directory (it holds stack.yaml), a build
// context (a directory holding a Kubefile), or a Kubefile (whose directory
// is its context). args are the --build-arg values; a stack's layers add
// their own beneath them.
//
// A stack that does not load is an error, and the target is still returned
// with the Kubefile of each subdirectory that has one, so that a linter
// can show every finding in them too.
func OpenTarget(path string, args map[string]string) (*Target, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		dir := filepath.Dir(path)
		return &Target{Dir: dir, Kubefiles: []Kubefile{{Path: path, Context: dir, BuildArgs: args}}}, nil
	}
	t := &Target{Dir: path}
	switch {
	case exists(filepath.Join(path, FileName)):
		s, err := Load(path, args)
		if err != nil {
			matches, _ := filepath.Glob(filepath.Join(path, "*", "Kubefile"))
			for _, m := range matches {
				t.Kubefiles = append(t.Kubefiles, Kubefile{Path: m, Context: filepath.Dir(m), BuildArgs: args})
			}
			return t, err
		}
		t.Stack = s
		for _, l := range s.Layers {
			t.Kubefiles = append(t.Kubefiles, Kubefile{Path: l.Kubefile, Context: l.Dir, BuildArgs: l.BuildArgs})
		}
	case exists(filepath.Join(path, "Kubefile")):
		t.Kubefiles = []Kubefile{{Path: filepath.Join(path, "Kubefile"), Context: path, BuildArgs: args}}
	default:
		return nil, fmt.Errorf("%s holds neither %s nor a Kubefile", path, FileName)
	}
	return t, nil
}

// exists reports whether something is at p (following links).
func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
