package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/blang/semver/v4"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/driver"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql/session"
	"go.temporal.io/server/common/resolver"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	schematool "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// passwordEnv holds the PostgreSQL password. It is never a flag: every user
// of the machine can read a process's command line.
const passwordEnv = "MILLRACE_POSTGRES_PASSWORD"

// maintenanceDB is where a missing database is created from, as Temporal's
// own temporal-sql-tool does (its --defaultdb).
const maintenanceDB = "postgres"

// The two schemas, as embedded in the server module, and the versions this
// binary's server needs.
var (
	persistenceSchema = pgSchema{dir: "postgresql/v12/temporal", version: pgschema.Version}
	visibilitySchema  = pgSchema{dir: "postgresql/v12/visibility", version: pgschema.VisibilityVersion}
)

type pgSchema struct{ dir, version string }

// pgTarget is a PostgreSQL server and the two databases the server keeps
// there (--postgres, --postgres-visibility-db). It holds no password.
type pgTarget struct {
	user  string
	addr  string // host:port
	db    string // persistence
	visDB string // visibility
	// attrs are the URL's query parameters (sslmode and the like), passed
	// to the driver as they are.
	attrs map[string]string
}

// dbName is what PostgreSQL accepts unquoted, plus '-': the plugin splices
// the name into CREATE DATABASE "%v" without escaping, so nothing that could
// end the quoted identifier may pass.
var dbName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)

// parsePostgresURL reads postgres://USER@HOST[:PORT]/DBNAME[?PARAMS]. A URL
// carrying a password is refused: it would be on the command line for every
// local user to read (ps), so the password comes from passwordEnv instead.
func parsePostgresURL(raw, visDB string) (*pgTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("want postgres://USER@HOST:PORT/DBNAME?sslmode=disable, not scheme %q", u.Scheme)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("the URL carries a password, which every local user can read on the command line: remove it and set %s instead", passwordEnv)
	}
	user := u.User.Username()
	if user == "" {
		return nil, errors.New("the URL names no user: want postgres://USER@HOST:PORT/DBNAME")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return nil, errors.New("the URL names no host: want postgres://USER@HOST:PORT/DBNAME")
	}
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return nil, errors.New("the URL names no database: want postgres://USER@HOST:PORT/DBNAME")
	}
	if u.Fragment != "" {
		return nil, errors.New("the URL has a #fragment")
	}
	t := &pgTarget{user: user, addr: net.JoinHostPort(host, port), db: db, visDB: visDB, attrs: map[string]string{}}
	if t.visDB == "" {
		t.visDB = db + "_visibility"
	}
	for _, name := range []string{t.db, t.visDB} {
		if !dbName.MatchString(name) {
			return nil, fmt.Errorf("database name %q: want letters, digits, _ or -, at most 63, starting with a letter or _", name)
		}
	}
	if t.db == t.visDB {
		return nil, fmt.Errorf("persistence and visibility both in database %s: each needs its own", t.db)
	}
	for k, v := range u.Query() {
		switch {
		case k == "password":
			return nil, fmt.Errorf("the URL carries a password, which every local user can read on the command line: remove it and set %s instead", passwordEnv)
		case len(v) != 1:
			return nil, fmt.Errorf("parameter %s is given %d times", k, len(v))
		}
		t.attrs[k] = v[0]
	}
	return t, nil
}

// postgresPassword reads passwordEnv. A space is refused: the server's
// plugin escapes the password for a URL query, not for the user-info part
// where it puts it, so a space would reach PostgreSQL as '+' and the login
// would fail for no visible reason.
func postgresPassword() (string, error) {
	p := os.Getenv(passwordEnv)
	if strings.Contains(p, " ") {
		return "", &exitError{code: 2, err: fmt.Errorf("%s contains a space, which Temporal's PostgreSQL plugin sends as '+': use a password without spaces", passwordEnv)}
	}
	return p, nil
}

// String is the target without the visibility database, as the ready line shows it.
func (t *pgTarget) String() string {
	return "postgres://" + url.User(t.user).String() + "@" + t.addr + "/" + t.db
}

// sqlConfig is the postgres12 plugin's configuration for database db. The
// pool is bounded: several servers may share one PostgreSQL (100 connections
// by default), and Temporal's own examples use 20.
func (t *pgTarget) sqlConfig(db, password string, maxConns int) *config.SQL {
	return &config.SQL{
		PluginName:        postgresql.PluginName,
		User:              t.user,
		Password:          password,
		ConnectAddr:       t.addr,
		ConnectProtocol:   "tcp",
		DatabaseName:      db,
		ConnectAttributes: maps.Clone(t.attrs),
		MaxConns:          maxConns,
		MaxIdleConns:      maxConns,
		MaxConnLifetime:   time.Hour,
	}
}

// connectPG opens conf's database through the plugin's own session code (so
// the DSN is built exactly as the server builds it) and pings it. Unlike the
// server's pooled handle, it returns the driver's error, which says why.
func connectPG(conf *config.SQL) (*sqlx.DB, error) {
	s, err := session.NewSession(conf, &driver.PQDriver{}, resolver.NewNoopResolver())
	if err != nil {
		return nil, err
	}
	return s.DB, nil
}

// pqCode is the SQLSTATE of a PostgreSQL error, "" for any other error.
func pqCode(err error) pqerror.Code {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// ensureDatabase creates conf's database when it does not exist. It first
// opens the database itself, so a role that may not create databases still
// works with databases made for it, and every connection failure is reported
// with the server's own reason.
func ensureDatabase(conf *config.SQL, logger log.Logger) error {
	db, err := connectPG(conf)
	if err == nil {
		return db.Close()
	}
	if pqCode(err) != pqerror.InvalidCatalogName {
		return connectFailure(conf, err)
	}
	logger.Info("creating PostgreSQL database " + conf.DatabaseName)
	// The tool connects to maintenanceDB; check that first for the same reason.
	admin := *conf
	admin.DatabaseName = maintenanceDB
	adb, err := connectPG(&admin)
	if err != nil {
		return fmt.Errorf("database %s does not exist, and it cannot be created from database %s: %w", conf.DatabaseName, maintenanceDB, connectFailure(&admin, err))
	}
	adb.Close()
	// DoCreateDatabase overwrites the DatabaseName of the config it is given.
	create := *conf
	err = sqltool.DoCreateDatabase(&create, maintenanceDB, logger)
	switch pqCode(err) {
	case "":
		if err != nil {
			return fmt.Errorf("cannot create database %s: %w", conf.DatabaseName, err)
		}
		return nil
	case pqerror.DuplicateDatabase: // another server created it meanwhile
		return nil
	case pqerror.InsufficientPrivilege:
		return fmt.Errorf("database %s does not exist and role %s may not create databases: create it (createdb -O %s %s) or grant the role CREATEDB",
			conf.DatabaseName, conf.User, conf.User, conf.DatabaseName)
	default:
		return fmt.Errorf("cannot create database %s: %w", conf.DatabaseName, err)
	}
}

// connectFailure says why conf's database could not be opened, with a hint
// where one helps.
func connectFailure(conf *config.SQL, err error) error {
	where := fmt.Sprintf("PostgreSQL at %s (user %s, database %s)", conf.ConnectAddr, conf.User, conf.DatabaseName)
	switch pqCode(err) {
	case pqerror.InvalidPassword, pqerror.InvalidAuthorizationSpecification:
		return fmt.Errorf("%s refused the login: %w (the password comes from %s)", where, err, passwordEnv)
	case pqerror.InvalidCatalogName:
		return fmt.Errorf("%s: %w", where, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("cannot reach %s: %w", where, err)
	}
	return fmt.Errorf("cannot open %s: %w", where, err)
}

func tagDB(conf *config.SQL) tag.ZapTag { return tag.NewStringTag("database", conf.DatabaseName) }

// ensureSchema brings conf's database to schema s with Temporal's own schema
// tool, as temporal-sql-tool's setup-schema -v 0.0 and update-schema do: an
// empty database gets the version tables, then every versioned step in
// order; an older one gets the steps it lacks. A newer one is refused
// (status 4): this binary's server would misread it.
func ensureSchema(conf *config.SQL, s pgSchema, logger log.Logger) error {
	conn, err := sqltool.NewConnection(conf, logger)
	if err != nil {
		return fmt.Errorf("database %s: %w", conf.DatabaseName, err)
	}
	defer conn.Close()
	tables, err := conn.ListTables()
	if err != nil {
		return fmt.Errorf("database %s: cannot list tables: %w", conf.DatabaseName, err)
	}
	if len(tables) == 0 {
		logger.Info("creating the Temporal schema", tagDB(conf))
		setup := schematool.NewSetupSchemaTask(conn, &schematool.SetupConfig{InitialVersion: "0.0"}, logger)
		if err := setup.Run(); err != nil {
			return fmt.Errorf("database %s: cannot create the schema version tables: %w", conf.DatabaseName, err)
		}
	} else {
		have, err := conn.ReadSchemaVersion()
		if err != nil {
			return fmt.Errorf("database %s has tables but no Temporal schema version (%v): point millrace-temporal at an empty database or one it made", conf.DatabaseName, err)
		}
		newer, err := newerVersion(have, s.version)
		if err != nil {
			return fmt.Errorf("database %s: %w", conf.DatabaseName, err)
		}
		if newer {
			return &exitError{code: 4, err: fmt.Errorf(
				"database %s has Temporal schema %s, newer than %s, the newest this binary (Temporal server %s) knows: run a millrace-temporal built on a newer server",
				conf.DatabaseName, have, s.version, serverVersion)}
		}
		if have == s.version {
			return nil
		}
		logger.Info("updating the Temporal schema from "+have, tagDB(conf))
	}
	update := schematool.NewUpdateSchemaTask(conn, &schematool.UpdateConfig{DBName: conf.DatabaseName, SchemaName: s.dir}, logger)
	if err := update.Run(); err != nil {
		return fmt.Errorf("database %s: cannot update the schema to %s: %w", conf.DatabaseName, s.version, err)
	}
	return nil
}

// newerVersion reports whether schema version have is past want.
func newerVersion(have, want string) (bool, error) {
	h, err := semver.ParseTolerant(have)
	if err != nil {
		return false, fmt.Errorf("unreadable schema version %q: %w", have, err)
	}
	w, err := semver.ParseTolerant(want)
	if err != nil {
		return false, fmt.Errorf("unreadable schema version %q: %w", want, err)
	}
	return h.GT(w), nil
}
