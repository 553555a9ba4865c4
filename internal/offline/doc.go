// Package offline holds the tests of the offline edition of the stack
// (Kubefiles/offline): its layer checks against stub kubectl programs, its
// Kubefiles through cnstack lint, ci/offline-edition.sh on stub binaries, the
// real component binaries against a real kube-apiserver and etcd on loopback
// (kruise, kube-state-metrics, Prometheus, the collector, ChaosBlade), and,
// with CNSTACK_E2E=1 (make e2e), the edition booted in a VM with sealer run.
package offline
