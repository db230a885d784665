package jobs_test

import (
	"fmt"
	"os"
	"testing"

	"millrace/internal/testenv"
)

// server is shared by every test of the package: one embedded Temporal
// server; each test has its own task queue and data dir.
var server *testenv.Server

func TestMain(m *testing.M) {
	s, err := testenv.StartServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}
