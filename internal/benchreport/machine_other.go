//go:build !linux && !darwin

package benchreport

import "runtime"

// readHost knows only the operating system's name here.
func readHost(m *Machine) { m.OS = runtime.GOOS }

func loadAverage() ([3]float64, bool) { return [3]float64{}, false }
