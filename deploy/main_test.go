package deploy

import (
	"testing"

	"millrace/internal/testenv"
)

// server is the embedded Temporal server on which the dashboard test
// produces the metrics the dashboard queries.
var server *testenv.Server

func TestMain(m *testing.M) { testenv.Main(m, &server) }
