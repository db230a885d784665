package activities_test

import (
	"testing"

	"millrace/internal/testenv"
)

// server is shared by every test of the package: one embedded Temporal
// server on a SQLite file; each test uses its own task queue and data dir.
var server *testenv.Server

func TestMain(m *testing.M) { testenv.Main(m, &server) }
