// Package tests holds ctdb-go's end-to-end tests: clusters of ctdbd in
// network namespaces built by tests/bed, with faults injected and the
// invariant checker running beside them. They need root and the
// integration build tag (`make test` runs them as root).
package tests
