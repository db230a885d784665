package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/log"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	schematool "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return -1
}

// TestPostgresFlags covers what --postgres refuses before touching any
// database, and what it makes of a good URL.
func TestPostgresFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--postgres", "postgres://u:hunter2@db:5432/m"}, "the URL carries a password, which every local user can read on the command line: remove it and set MILLRACE_POSTGRES_PASSWORD instead"},
		{[]string{"--postgres", "postgres://u@db/m?password=hunter2"}, "remove it and set MILLRACE_POSTGRES_PASSWORD instead"},
		{[]string{"--postgres", "postgres://u@db/m", "--db-filename", "/tmp/x.db"}, "--db-filename and --postgres cannot be used together"},
		{[]string{"--postgres-visibility-db", "v"}, "--postgres-visibility-db needs --postgres"},
		{[]string{"--postgres", "mysql://u@db/m"}, `not scheme "mysql"`},
		{[]string{"--postgres", "db:5432/m"}, "--postgres: "},
		{[]string{"--postgres", "postgres://db:5432/m"}, "the URL names no user"},
		{[]string{"--postgres", "postgres://u@/m"}, "the URL names no host"},
		{[]string{"--postgres", "postgres://u@db:5432/"}, "the URL names no database"},
		{[]string{"--postgres", `postgres://u@db/a"b`}, `database name "a\"b"`},
		{[]string{"--postgres", "postgres://u@db/m", "--postgres-visibility-db", "m"}, "persistence and visibility both in database m"},
		{[]string{"--postgres", "postgres://u@db/m?sslmode=disable&sslmode=require"}, "parameter sslmode is given 2 times"},
	} {
		var stderr strings.Builder
		_, err := parseArgs(tc.args, &stderr)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want exit status 2 and %q", tc.args, err, tc.want)
		}
		if !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "not a production server") {
			t.Errorf("%v: stderr lacks the message or the usage:\n%s", tc.args, stderr.String())
		}
	}

	o, err := parseArgs([]string{"start-dev", "--postgres", "postgresql://mill@db.example:6543/runs?sslmode=require&connect_timeout=5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p := o.postgres
	if p.user != "mill" || p.addr != "db.example:6543" || p.db != "runs" || p.visDB != "runs_visibility" ||
		p.attrs["sslmode"] != "require" || p.attrs["connect_timeout"] != "5" || len(p.attrs) != 2 {
		t.Errorf("target = %+v", p)
	}
	if got, want := p.String(), "postgres://mill@db.example:6543/runs"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	o, err = parseArgs([]string{"--postgres", "postgres://mill@db/runs", "--postgres-visibility-db", "vis"}, io.Discard)
	if err != nil || o.postgres.addr != "db:5432" || o.postgres.visDB != "vis" {
		t.Errorf("default port, visibility override: %+v, %v", o.postgres, err)
	}
}

// TestPostgres runs on one real PostgreSQL (initdb takes seconds).
func TestPostgres(t *testing.T) {
	pg := startPostgres(t)
	t.Run("server", func(t *testing.T) { testPostgresServer(t, pg) })
	t.Run("schema", func(t *testing.T) { testPostgresSchema(t, pg) })
	t.Run("lock after a cut", func(t *testing.T) { testPostgresLockAfterCut(t, pg) })
}

// testPostgresServer: empty databases get both schemas, a second server on
// them is refused, PostgreSQL restarted under the server is survived, and a
// restarted server (schema present) sees the runs of the first, through
// PostgreSQL visibility.
func testPostgresServer(t *testing.T, pg *pgServer) {
	t.Setenv(passwordEnv, pgPassword)
	url := fmt.Sprintf("postgres://%s@127.0.0.1:%d/mr?sslmode=disable", pgPasswordRole, pg.port)
	args := []string{"--postgres", url, "--search-attribute", "MillraceStatus=Keyword", "--log-level", "error"}

	began := time.Now()
	first := start(t, args...)
	t.Logf("empty PostgreSQL to ready (databases and schema created): %v", time.Since(began).Round(time.Millisecond))
	if want := "millrace-temporal ready address=" + first.addr + " namespace=default db=postgres://" + pgPasswordRole + "@127.0.0.1:" + strconv.Itoa(pg.port) + "/mr version=" + serverVersion; first.ready != want {
		t.Errorf("ready line\n got %q\nwant %q", first.ready, want)
	}
	checkSchemaVersion(t, pg, "mr", pgschema.Version)
	checkSchemaVersion(t, pg, "mr_visibility", pgschema.VisibilityVersion)
	wf, _ := first.clients(t)
	startRun(t, wf, "pg-1", "queued")
	waitList(t, wf, `MillraceStatus = "queued"`, 1)
	var rows int
	if err := pg.open(t, "mr_visibility").Get(&rows, "SELECT count(*) FROM executions_visibility WHERE workflow_id = 'pg-1'"); err != nil || rows != 1 {
		t.Errorf("rows in PostgreSQL visibility: %d, %v; want 1", rows, err)
	}

	// A second server on the same databases is refused at once, and told who owns them.
	err := run(context.Background(), []string{"--postgres", url, "--port", strconv.Itoa(mustFreePort(t))}, io.Discard, io.Discard)
	wantMsg := fmt.Sprintf("another millrace-temporal (pid %d connecting from 127.0.0.1) owns PostgreSQL database mr at 127.0.0.1:%d and serves %s; connect to it instead", os.Getpid(), pg.port, first.addr)
	if exitCode(err) != 3 || err.Error() != wantMsg {
		t.Errorf("second server: %v (status %d)\nwant %q (status 3)", err, exitCode(err), wantMsg)
	}

	// PostgreSQL restarted under the server: every session ends, the lock's
	// too. The server must reconnect by itself and take the lock back.
	pg.restart(t)
	restarted := time.Now()
	startRunEventually(t, wf, "pg-2", "running", 60*time.Second)
	t.Logf("PostgreSQL restarted: a run started again after %v", time.Since(restarted).Round(time.Millisecond))
	waitOwner(t, pg, first.addr)
	first.stop(t)

	began = time.Now()
	second := start(t, append(args, "--search-attribute", "MillraceCell=Int")...)
	t.Logf("schema present to ready: %v", time.Since(began).Round(time.Millisecond))
	wf, _ = second.clients(t)
	for _, id := range []string{"pg-1", "pg-2"} {
		if _, err := wf.DescribeWorkflowExecution(context.Background(), &workflowservice.DescribeWorkflowExecutionRequest{
			Namespace: "default", Execution: &commonpb.WorkflowExecution{WorkflowId: id},
		}); err != nil {
			t.Errorf("run %s lost across the restart: %v", id, err)
		}
	}
	// Filters, counts and paging, all on PostgreSQL visibility.
	if got := waitList(t, wf, `MillraceStatus IN ("queued", "running")`, 2); strings.Join(got, ",") != "pg-1,pg-2" {
		t.Errorf("listed %v", got)
	}
	count, err := wf.CountWorkflowExecutions(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: "default", Query: `MillraceStatus = "running"`,
	})
	if err != nil || count.GetCount() != 1 {
		t.Errorf("count = %d, %v; want 1", count.GetCount(), err)
	}
	var paged []string
	var token []byte
	for range 3 {
		page, err := wf.ListWorkflowExecutions(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", PageSize: 1, NextPageToken: token, Query: `MillraceStatus IS NOT NULL`,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.GetExecutions() {
			paged = append(paged, e.GetExecution().GetWorkflowId())
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	sort.Strings(paged)
	if strings.Join(paged, ",") != "pg-1,pg-2" {
		t.Errorf("pages of one: %v, want pg-1 and pg-2", paged)
	}
	// The attribute added on this start is usable at once.
	startRun(t, wf, "pg-3", "queued", "MillraceCell", "3")
}

// testPostgresSchema covers what is found in a database other than nothing
// or the current schema, and what is refused before a server starts.
func testPostgresSchema(t *testing.T, pg *pgServer) {
	logger := log.NewNoopLogger()
	target, err := parsePostgresURL(pg.url("older"), "")
	if err != nil {
		t.Fatal(err)
	}

	// Older: made by an older server, it is brought up to date.
	older := target.sqlConfig("older", "", 2)
	if err := ensureDatabase(older, logger); err != nil {
		t.Fatal(err)
	}
	conn, err := sqltool.NewConnection(older, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := schematool.NewSetupSchemaTask(conn, &schematool.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
		t.Fatal(err)
	}
	if err := schematool.NewUpdateSchemaTask(conn, &schematool.UpdateConfig{DBName: "older", SchemaName: persistenceSchema.dir, TargetVersion: "1.10"}, logger).Run(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	checkSchemaVersion(t, pg, "older", "1.10")
	if err := ensureSchema(older, persistenceSchema, logger); err != nil {
		t.Fatal(err)
	}
	checkSchemaVersion(t, pg, "older", pgschema.Version)
	// Present: nothing to do, and nothing done.
	if err := ensureSchema(older, persistenceSchema, logger); err != nil {
		t.Fatal(err)
	}

	// Newer: refused with status 4, before any server starts on it.
	pg.exec(t, "older", "UPDATE schema_version SET curr_version = '1.99'")
	err = ensureSchema(older, persistenceSchema, logger)
	want := "database older has Temporal schema 1.99, newer than " + pgschema.Version + ", the newest this binary (Temporal server " + serverVersion + ") knows: run a millrace-temporal built on a newer server"
	if exitCode(err) != 4 || err.Error() != want {
		t.Errorf("newer schema: %v (status %d)\nwant %q (status 4)", err, exitCode(err), want)
	}

	// Someone else's database.
	pg.exec(t, "postgres", "CREATE DATABASE theirs")
	pg.exec(t, "theirs", "CREATE TABLE accounts (id int)")
	err = run(context.Background(), []string{"--postgres", pg.url("theirs"), "--port", strconv.Itoa(mustFreePort(t))}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "database theirs has tables but no Temporal schema version") {
		t.Errorf("foreign database: %v", err)
	}

	// A role that may not create databases is told what to do.
	pg.exec(t, "postgres", "CREATE ROLE limited LOGIN")
	err = run(context.Background(), []string{"--postgres", strings.Replace(pg.url("nodb"), "postgres@", "limited@", 1), "--port", strconv.Itoa(mustFreePort(t))}, io.Discard, io.Discard)
	if want := "database nodb does not exist and role limited may not create databases: create it (createdb -O limited nodb) or grant the role CREATEDB"; err == nil || err.Error() != want {
		t.Errorf("no CREATEDB: %v\nwant %q", err, want)
	}

	// A space in the password would reach PostgreSQL as '+'.
	t.Setenv(passwordEnv, "two words")
	err = run(context.Background(), []string{"--postgres", pg.url("mr"), "--port", strconv.Itoa(mustFreePort(t))}, io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "MILLRACE_POSTGRES_PASSWORD contains a space") {
		t.Errorf("password with a space: %v", err)
	}

	// A wrong password names where the password comes from.
	t.Setenv(passwordEnv, "wrong")
	err = run(context.Background(), []string{"--postgres", strings.Replace(pg.url("mr"), "postgres@", pgPasswordRole+"@", 1), "--port", strconv.Itoa(mustFreePort(t))}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "refused the login") || !strings.Contains(err.Error(), "(the password comes from MILLRACE_POSTGRES_PASSWORD)") {
		t.Errorf("wrong password: %v", err)
	}
}

func checkSchemaVersion(t *testing.T, pg *pgServer, db, want string) {
	t.Helper()
	var got string
	if err := pg.open(t, db).Get(&got, "SELECT curr_version FROM schema_version WHERE db_name = $1", db); err != nil || got != want {
		t.Errorf("schema version of %s = %q, %v; want %q", db, got, err, want)
	}
}

func startRequest(id, status string, more ...string) *workflowservice.StartWorkflowExecutionRequest {
	fields := map[string]*commonpb.Payload{
		"MillraceStatus": {Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(strconv.Quote(status))},
	}
	for i := 0; i+1 < len(more); i += 2 {
		fields[more[i]] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(more[i+1])}
	}
	return &workflowservice.StartWorkflowExecutionRequest{
		Namespace:        "default",
		WorkflowId:       id,
		RequestId:        id + "-request",
		WorkflowType:     &commonpb.WorkflowType{Name: "Nothing"},
		TaskQueue:        &taskqueuepb.TaskQueue{Name: "nobody-polls"},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: fields},
	}
}

// startRun starts a workflow nobody works on, with MillraceStatus = status
// and more NAME, JSON pairs of search attributes.
func startRun(t *testing.T, wf workflowservice.WorkflowServiceClient, id, status string, more ...string) {
	t.Helper()
	if _, err := wf.StartWorkflowExecution(context.Background(), startRequest(id, status, more...)); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
}

// startRunEventually retries the start (same request id, so a retry of a
// start that did land is not an error) until it succeeds or wait passes.
func startRunEventually(t *testing.T, wf workflowservice.WorkflowServiceClient, id, status string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := wf.StartWorkflowExecution(ctx, startRequest(id, status))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("start %s: still failing after %v: %v", id, wait, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitList polls until query lists want runs (visibility is eventually
// consistent) and returns their ids, sorted.
func waitList(t *testing.T, wf workflowservice.WorkflowServiceClient, query string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := wf.ListWorkflowExecutions(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: query})
		if err == nil && len(list.GetExecutions()) == want {
			var ids []string
			for _, e := range list.GetExecutions() {
				ids = append(ids, e.GetExecution().GetWorkflowId())
			}
			sort.Strings(ids)
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("list %s: %v, %d executions, want %d", query, err, len(list.GetExecutions()), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOwner polls until the owner lock in database mr is held again by this
// process, publishing addr.
func waitOwner(t *testing.T, pg *pgServer, addr string) {
	t.Helper()
	want := fmt.Sprintf("millrace-temporal pid=%d address=%s", os.Getpid(), addr)
	db := pg.open(t, "mr")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var names []string
		err := db.Select(&names, `SELECT a.application_name FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
			WHERE k.locktype = 'advisory' AND k.granted AND k.objid = $1`, ownerLockKey)
		if err == nil && len(names) == 1 && names[0] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("owner lock after the PostgreSQL restart: %v, %v; want %q", names, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testPostgresLockAfterCut cuts the owner lock's connection in a way
// PostgreSQL does not notice (a proxy that stops forwarding but keeps both
// sockets open): the old session keeps the lock, and the server must
// recognise it as its own, end it and take the lock again, not give up.
func testPostgresLockAfterCut(t *testing.T, pg *pgServer) {
	proxy := startFreezingProxy(t, "127.0.0.1:"+strconv.Itoa(pg.port))
	target, err := parsePostgresURL("postgres://postgres@"+proxy.addr+"/cut?sslmode=disable", "")
	if err != nil {
		t.Fatal(err)
	}
	conf := target.sqlConfig(target.db, "", 2)
	logger := log.NewNoopLogger()
	if err := ensureDatabase(conf, logger); err != nil {
		t.Fatal(err)
	}
	l, err := lockPostgres(conf, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	l.mu.Lock()
	old := l.session
	l.mu.Unlock()

	proxy.freeze()
	db := pg.open(t, "cut")
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pids []int
		err := db.Select(&pids, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1`, ownerLockKey)
		l.mu.Lock()
		now := l.session
		l.mu.Unlock()
		if err == nil && len(pids) == 1 && pids[0] == now.pid && now.pid != old.pid {
			break
		}
		select {
		case err := <-l.lost():
			t.Fatalf("gave the lock up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock holders %v (%v); old session %d, current %d", pids, err, old.pid, now.pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var alive int
	if err := db.Get(&alive, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", old.pid); err != nil || alive != 0 {
		t.Errorf("old session still there: %d, %v", alive, err)
	}
}

// freezingProxy forwards TCP connections until freeze, after which the
// connections it has stop moving bytes and stay open, as across a network
// cut; new connections are forwarded as before.
type freezingProxy struct {
	addr   string
	frozen chan struct{}
	end    chan struct{}
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{addr: ln.Addr().String(), frozen: make(chan struct{}), end: make(chan struct{})}
	t.Cleanup(func() { close(p.end); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			frozen := p.frozen
			select {
			case <-frozen:
				frozen = make(chan struct{}) // accepted after the freeze: never frozen
			default:
			}
			go p.pipe(c, s, frozen)
			go p.pipe(s, c, frozen)
		}
	}()
	return p
}

// pipe copies src to dst; once frozen, it holds what it read and both
// sockets until the test ends.
func (p *freezingProxy) pipe(src, dst net.Conn, frozen chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-frozen:
			<-p.end
			src.Close()
			dst.Close()
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			src.Close()
			dst.Close()
			return
		}
	}
}

func (p *freezingProxy) freeze() { close(p.frozen) }
