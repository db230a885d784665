//go:build !darwin

package python

// appleStub: only macOS has the stub.
func appleStub(string) string { return "" }
