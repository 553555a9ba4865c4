// Package kubebase holds the tests of the Kubernetes base cluster image's
// install scripts (Kubefiles/kubernetes/rootfs/scripts): they run against a
// scratch directory standing in for a host of each supported family, with
// stub system commands, so the RHEL-family path is tested where no RHEL VM
// can boot. The image itself is proven by `cnstack boot` in a VM.
package kubebase
