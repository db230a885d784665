package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/headers"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"google.golang.org/protobuf/types/known/durationpb"
)

// serverVersion is the Temporal server linked into this binary.
var serverVersion = headers.ServerVersion

// sqlConfig points the sqlite plugin at dbFile, or at a private shared-cache
// in-memory database when dbFile is empty.
func sqlConfig(dbFile string) *config.SQL {
	c := &config.SQL{PluginName: sqliteplugin.PluginName}
	if dbFile == "" {
		c.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		c.DatabaseName = "millrace-" + strconv.FormatUint(rand.Uint64(), 36)
		return c
	}
	// WAL with synchronous=normal: a commit is an append to the log, synced
	// at checkpoints rather than twice per commit. A killed server loses
	// nothing (the WAL is replayed at open); only an OS crash or power cut
	// may roll back the last commits. The default journal cost about 30 ms
	// of every run and serialized starts behind disk syncs (BENCHMARKS.md).
	// One connection, as before: the plugin's default, which keeps writers
	// from meeting "database is locked".
	c.ConnectAttributes = map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"}
	c.DatabaseName = dbFile
	return c
}

// versionFile records which server created dbFile. There is no schema
// migration for SQLite, so a DB must only be opened by the server version that
// created it; the record turns a confusing failure later into a clear one now.
func versionFile(dbFile string) string { return dbFile + ".server-version" }

// checkVersion compares an existing DB's record with this binary (status 4 on
// mismatch). A DB without a record predates it and is assumed compatible.
func checkVersion(dbFile string) error {
	b, err := os.ReadFile(versionFile(dbFile))
	if errors.Is(err, fs.ErrNotExist) {
		return writeVersion(dbFile)
	}
	if err != nil {
		return fmt.Errorf("cannot read the server version record: %w", err)
	}
	if got := strings.TrimSpace(string(b)); got != serverVersion {
		return &exitError{code: 4, err: fmt.Errorf(
			"%s was created by Temporal server %s; this binary is %s; there is no SQLite schema migration: use a %s-compatible data dir or the %s binary",
			dbFile, got, serverVersion, serverVersion, got)}
	}
	return nil
}

func writeVersion(dbFile string) error {
	if err := os.WriteFile(versionFile(dbFile), []byte(serverVersion+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write the server version record: %w", err)
	}
	return nil
}

// store is where a server persists: the SQL configuration of its
// persistence and visibility stores (one and the same for SQLite) and the
// name the ready line gives it.
type store struct {
	persistence, visibility *config.SQL
	name                    string
}

// setupSQLiteSchema creates the schema in a new DB file (the sqlite plugin
// does it by itself for in-memory DBs, on connect) and records the server
// version beside it.
func setupSQLiteSchema(o *options, conf *config.SQL) error {
	if err := sqliteschema.SetupSchema(conf); err != nil {
		// Do not leave a half-made file that would later pass for a DB.
		_ = os.Remove(o.dbFile)
		return fmt.Errorf("cannot set up the SQLite schema: %w", err)
	}
	return writeVersion(o.dbFile)
}

// createNamespaces writes the namespaces that do not exist yet into the
// persistence store before the server starts, with their retention and
// search attributes, so that clients can use both as soon as the server is
// ready (the namespace registry loads them at start). sqliteschema's
// function writes through whichever SQL plugin conf names, PostgreSQL's too.
// Existing namespaces are left alone here; their retention and search
// attributes are reconciled through the API once the server runs (see
// reconcileNamespaces).
func createNamespaces(o *options, conf *config.SQL) error {
	var nsConfs []*sqliteschema.NamespaceConfig
	for _, ns := range o.namespaces {
		c, err := sqliteschema.NewNamespaceConfig(clusterName, ns, false, o.searchAttrs)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		// The package default is 24 h: closed runs would vanish after a day.
		c.Detail.Config.Retention = durationpb.New(o.retention)
		nsConfs = append(nsConfs, c)
	}
	if err := sqliteschema.CreateNamespaces(conf, nsConfs...); err != nil {
		return fmt.Errorf("cannot create namespaces: %w", err)
	}
	return nil
}
