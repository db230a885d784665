package metrics_test

import (
	"testing"

	"millrace/internal/testenv"
)

// server is the package's embedded Temporal server (integration tests).
var server *testenv.Server

func TestMain(m *testing.M) { testenv.Main(m, &server) }
