//go:build !linux

package executor

// markedNative is markedPS: without /proc, ps is the way to read other
// processes' environments (on macOS through sysctl KERN_PROCARGS2).
func markedNative(marker string) []int { return markedPS(marker) }
