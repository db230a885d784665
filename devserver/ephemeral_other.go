//go:build !linux && !darwin

package main

// ephemeralLow is IANA's first dynamic port, where most systems start
// their ephemeral range.
func ephemeralLow() int { return 49152 }
