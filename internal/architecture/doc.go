// Package architecture holds no code of the product: its test keeps the
// package dependency rules of ARCHITECTURE.md true. The rules are data
// (rules.go), checked against `go list` of the module, so a new import that
// breaks one fails `make test` with the rule's reason.
package architecture
