// Package offline holds the tests of the offline edition of the stack
// (Kubefiles/offline): its layer checks against stub kubectl programs, its
// Kubefiles through cnstack lint, and ci/offline-edition.sh on stub binaries.
// The real binaries in a real VM are the lead's `cnstack boot` of the top image.
package offline
