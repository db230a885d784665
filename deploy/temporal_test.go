package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"millrace/internal/config"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// deprecatedImages are images a compose file must not run, with why.
var deprecatedImages = []struct {
	name, why string
	match     func(tag string) bool
}{
	// Temporal stopped building it ("autosetup is deprecated and we are no
	// longer building new images", temporalio/features#707, Dec 2025; the
	// image's Docker Hub page carries the deprecation note): no new server
	// versions, no security fixes. temporalio/server plus a schema step
	// with temporalio/admin-tools replaces it (temporalio/samples-server
	// compose/).
	{"temporalio/auto-setup", "deprecated upstream: no new builds or security fixes", func(string) bool { return true }},
	// Temporal Web v1, replaced by temporalio/ui (Temporal Web is
	// deprecated: temporalio/temporalite#93).
	{"temporalio/web", "Temporal Web v1, deprecated for temporalio/ui", func(string) bool { return true }},
	// tctl is deprecated for the temporal CLI (docs.temporal.io/tctl-v1:
	// "no longer actively supported").
	{"temporalio/tctl", "tctl is deprecated for the temporal CLI", func(string) bool { return true }},
	// admin-tools tags up to 1.29 bundled tctl (1.29.1-tctl-1.18.4-cli-1.5.0);
	// from 1.30 the tag is the server version and the image has the
	// temporal CLI only.
	{"temporalio/admin-tools", "a tag that bundles the deprecated tctl", func(tag string) bool { return strings.Contains(tag, "-tctl-") }},
}

// serverModule is go.temporal.io/server as devserver/go.mod requires it:
// the embedded server's version, and its source (config template, schema
// folders, dynamic config keys), which is what the images of that version
// are built from.
func serverModule(t *testing.T) (version, dir string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-json", "go.temporal.io/server")
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "devserver")
	out, err := cmd.Output()
	var m struct{ Version, Dir string }
	if err == nil {
		err = json.Unmarshal(out, &m)
	}
	if err != nil || m.Dir == "" {
		t.Fatalf("go.temporal.io/server of devserver/go.mod is not in the module cache (%v): run `make devserver` or `cd devserver && go mod download go.temporal.io/server`", err)
	}
	return strings.TrimPrefix(m.Version, "v"), m.Dir
}

// TestComposeTemporal checks the compose file's Temporal cluster against
// the embedded server's own version: the images and their tags, the
// server's environment against its config template, the schema step
// against the schema folders, the order the one-shot steps run in, and
// that millrace's search attributes fit the SQL visibility schema.
func TestComposeTemporal(t *testing.T) {
	root := testenv.RepoRoot()
	version, src := serverModule(t)
	c := readCompose(t)

	for name, s := range c.Services {
		repo, tag, _ := strings.Cut(s.Image, ":")
		for _, d := range deprecatedImages {
			if repo == d.name && d.match(tag) {
				t.Errorf("service %s runs %s: %s", name, s.Image, d.why)
			}
		}
		switch repo {
		case "temporalio/server", "temporalio/admin-tools":
			if tag != version {
				t.Errorf("service %s runs %s, want tag %s (go.temporal.io/server in devserver/go.mod)", name, s.Image, version)
			}
		}
	}

	server, ok := c.Services["temporal"]
	if !ok || !strings.HasPrefix(server.Image, "temporalio/server:") {
		t.Fatalf("service temporal must run temporalio/server, got %q", server.Image)
	}
	// The image has no config file: the server renders its embedded
	// template, which reads these variables. A misspelt one is ignored.
	tmpl, err := os.ReadFile(filepath.Join(src, "common", "config", "config_template_embedded.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for k := range server.Environment {
		if !strings.Contains(string(tmpl), `(env "`+k+`")`) {
			t.Errorf("temporal: %s is not read by the server's config template", k)
		}
	}
	if env := server.Environment; env["DB"] != "postgres12" || env["POSTGRES_SEEDS"] != "postgresql" {
		t.Errorf("temporal must use the postgresql service: %v", env)
	}
	checkDynamicConfig(t, root, src, server.Environment["DYNAMIC_CONFIG_FILE_PATH"], server.Volumes)

	// PostgreSQL, then the schema, then the server, then the namespace,
	// then the workers and the MCP server; the UI after the server.
	needs := func(svc, dep, cond string) {
		t.Helper()
		if got, ok := c.Services[svc].DependsOn[dep]; !ok || got != cond {
			t.Errorf("%s must wait for %s with condition %s, got %q (depends_on %v)", svc, dep, cond, got, c.Services[svc].DependsOn)
		}
	}
	schema := oneShot(t, c, "temporal-sql-tool")
	needs(schema, "postgresql", "service_healthy")
	needs("temporal", schema, "service_completed_successfully")
	ns := oneShot(t, c, "temporal operator namespace create")
	needs(ns, "temporal", "service_healthy")
	for _, svc := range []string{"worker", "mcp"} {
		needs(svc, ns, "service_completed_successfully")
	}
	needs("temporal-ui", "temporal", "service_healthy")
	if len(server.Healthcheck.Test) == 0 {
		t.Error("temporal has no healthcheck: service_healthy would never hold")
	}
	if !strings.HasPrefix(c.Services["temporal-ui"].Image, "temporalio/ui:") {
		t.Errorf("temporal-ui runs %q, want temporalio/ui", c.Services["temporal-ui"].Image)
	}

	// Both databases are created, set up and migrated from the image's
	// schema folders, which the admin-tools image copies from the server
	// repository's schema/ (docker/targets/admin-tools.Dockerfile).
	script := strings.Join(c.Services[schema].Command, "\n")
	for _, want := range []string{"--plugin postgres12", "--ep postgresql", "-p 5432"} {
		if !strings.Contains(script, want) {
			t.Errorf("%s: the schema tool lacks %s", schema, want)
		}
	}
	for db, folder := range map[string]string{"temporal": "temporal", "temporal_visibility": "visibility"} {
		dir := "/etc/temporal/schema/postgresql/v12/" + folder + "/versioned"
		steps := regexp.MustCompile(`--db ` + db + ` create\n.*--db ` + db + ` setup-schema -v 0\.0\n.*--db ` + db + ` update-schema -d ` + regexp.QuoteMeta(dir) + `\n`)
		if !steps.MatchString(script) {
			t.Errorf("%s must create %s, set up its schema and update it from %s, in that order:\n%s", schema, db, dir, script)
		}
		if _, err := os.Stat(filepath.Join(src, "schema", strings.TrimPrefix(dir, "/etc/temporal/schema/"))); err != nil {
			t.Errorf("the schema folder %s is not in server %s: %v", dir, version, err)
		}
	}
	nsScript := strings.Join(c.Services[ns].Command, "\n")
	if !strings.Contains(nsScript, "--namespace "+config.DefaultNamespace+" --retention 720h") {
		t.Errorf("%s must create namespace %s with 30 days' retention:\n%s", ns, config.DefaultNamespace, nsScript)
	}
	if c.Services[ns].Environment["TEMPORAL_ADDRESS"] != "temporal:7233" {
		t.Errorf("%s must reach the server at temporal:7233: %v", ns, c.Services[ns].Environment)
	}

	// SQL visibility keeps custom search attributes in pre-made columns
	// (Keyword01..Keyword10 and so on): there must be one per attribute.
	vis, err := os.ReadFile(filepath.Join(src, "schema", "postgresql", "v12", "visibility", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	wanted := map[string]int{}
	for _, typ := range workflows.SearchAttributeTypes {
		wanted[typ]++
	}
	for typ, n := range wanted {
		have := len(regexp.MustCompile(`(?m)^\s*`+typ+`\d\d\s`).FindAll(vis, -1))
		if n > have {
			t.Errorf("millrace has %d %s search attributes; PostgreSQL visibility of server %s has %d columns for them", n, typ, version, have)
		}
	}
}

// oneShot returns the service that runs an admin-tools command containing
// what, and checks it runs once: no restart policy that would bring it
// back after it succeeded.
func oneShot(t *testing.T, c composeFile, what string) string {
	t.Helper()
	var found []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "temporalio/admin-tools:") && strings.Contains(strings.Join(s.Command, "\n"), what) {
			found = append(found, name)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one admin-tools service running %q, got %v", what, found)
	}
	if r := c.Services[found[0]].Restart; r != "" && r != "no" && !strings.HasPrefix(r, "on-failure") {
		t.Errorf("%s runs once, but restart is %q", found[0], r)
	}
	return found[0]
}

// checkDynamicConfig checks that the server's dynamic config file is
// mounted from the repository at the path the server reads, and that each
// key it sets is one the server version has: an unknown key is ignored.
func checkDynamicConfig(t *testing.T, root, src, path string, volumes []string) {
	t.Helper()
	local := ""
	for _, v := range volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == path {
			local = parts[0]
		}
	}
	if path == "" || !strings.HasPrefix(local, "./") {
		t.Fatalf("temporal: DYNAMIC_CONFIG_FILE_PATH %q is not mounted from the repository (volumes %v); the server fails to start without the file", path, volumes)
	}
	var dc map[string][]struct {
		Value       any            `yaml:"value"`
		Constraints map[string]any `yaml:"constraints"`
	}
	readYAML(t, filepath.Join(root, local), &dc)
	keys, err := os.ReadFile(filepath.Join(src, "common", "dynamicconfig", "constants.go"))
	if err != nil {
		t.Fatal(err)
	}
	for k, vals := range dc {
		if !strings.Contains(string(keys), `"`+k+`"`) {
			t.Errorf("%s: %s is not a dynamic config key of this server version", local, k)
		}
		if len(vals) == 0 || vals[0].Value == nil {
			t.Errorf("%s: %s has no value", local, k)
		}
	}
}
