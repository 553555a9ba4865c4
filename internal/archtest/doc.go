// Package archtest holds the architecture tests of cnstack: no package
// imports a later stage of the pipeline (the stages are listed, one line
// per package, in archtest_test.go and in the README's architecture
// section), install and verify read images only through the low-level
// packages, and every package says what it is in a package comment.
// It has no code of its own.
package archtest
