//go:build linux

package testcluster_test

import (
	"strings"
	"testing"

	"millrace/internal/testcluster"
)

// TestPostgreSQL starts PostgreSQL on its host, writes from another host,
// and checks that a committed row survives a fast restart and an
// immediate one (a crash, recovered from the write-ahead log).
func TestPostgreSQL(t *testing.T) {
	n := testcluster.NewNetwork(t)
	db, client := n.AddHost("db"), n.AddHost("client")
	pg := testcluster.StartPostgreSQL(t, db)
	if !strings.Contains(pg.URL("x"), db.Addr) {
		t.Errorf("URL %s does not name the db host's address %s", pg.URL("x"), db.Addr)
	}
	query := func(sql string) string {
		t.Helper()
		out, err := pg.Query(client, "postgres", sql)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	query("CREATE TABLE rows (n int)")
	query("INSERT INTO rows VALUES (1)")
	for i, mode := range []testcluster.ShutdownMode{testcluster.Fast, testcluster.Immediate} {
		took := pg.Restart(t, mode)
		t.Logf("%s restart: %s", mode, took)
		query("INSERT INTO rows VALUES (" + string(rune('2'+i)) + ")")
	}
	if got, want := query("SELECT string_agg(n::text, ',' ORDER BY n) FROM rows"), "1,2,3"; got != want {
		t.Errorf("rows after two restarts: %s, want %s", got, want)
	}
	pg.Stop(t, testcluster.Fast)
	if _, err := pg.Query(client, "postgres", "SELECT 1"); err == nil {
		t.Error("a query succeeded with the server stopped")
	}
	pg.Start(t)
	query("SELECT 1")
}
