// Package deploy holds the container setup (docker-compose.yml at the
// repository root, deploy/Dockerfile). There is no container engine on the
// test machines, so this test checks the files' structure instead: the
// services, images, volumes and ports, and that every command line uses
// flags the binaries really have.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"millrace/internal/testenv"
)

type composeFile struct {
	Services map[string]struct {
		Image       string                                        `yaml:"image"`
		Build       *struct{ Context, Dockerfile, Target string } `yaml:"build"`
		Command     []string                                      `yaml:"command"`
		Environment map[string]string                             `yaml:"environment"`
		Volumes     []string                                      `yaml:"volumes"`
		Ports       []string                                      `yaml:"ports"`
		DependsOn   any                                           `yaml:"depends_on"`
		Container   string                                        `yaml:"container_name"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeFile(t *testing.T) {
	root := testenv.RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"postgresql", "temporal", "temporal-ui", "worker", "mcp"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	if env := c.Services["temporal"].Environment; env["DB"] != "postgres12" || env["POSTGRES_SEEDS"] != "postgresql" {
		t.Errorf("temporal must use the postgresql service: %v", env)
	}
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if s.Image != "" && !strings.Contains(s.Image, ":") {
			t.Errorf("service %s: image %s is not pinned to a tag", name, s.Image)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %s beyond loopback", name, p)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, ok := c.Volumes[src]; !ok && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				t.Errorf("service %s mounts undeclared volume %s", name, src)
			}
		}
	}
	w, m := c.Services["worker"], c.Services["mcp"]
	if w.Container != "" || len(w.Ports) > 0 {
		t.Error("worker must scale (--scale worker=3): no container_name, no published ports")
	}
	for _, v := range []string{"notebooks:/notebooks", "data:/data"} {
		if !contains(w.Volumes, v) || !contains(m.Volumes, v) {
			t.Errorf("worker and mcp must share %s at the same path", v)
		}
	}
	if tok := m.Environment["MILLRACE_MCP_TOKEN"]; !strings.HasPrefix(tok, "${MILLRACE_MCP_TOKEN:?") {
		t.Errorf("the MCP token must be required, got %q", tok)
	}

	// The Dockerfile has the stages the services build.
	df, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*struct{ Context, Dockerfile, Target string }{w.Build, m.Build} {
		if s == nil || !regexp.MustCompile(`(?m)^FROM .* AS `+s.Target+`$`).Match(df) || s.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("build %+v: no stage of that name in deploy/Dockerfile", s)
		}
	}

	// The commands use flags the binaries have: parsing them, then -h,
	// fails on an unknown flag before any work is done.
	bins := t.TempDir()
	for _, svc := range []struct{ name, pkg string }{{"worker", "./cmd/worker"}, {"mcp", "./cmd/mcp"}} {
		cmd := c.Services[svc.name].Command
		bin, err := testenv.BuildBinary(bins, svc.pkg, cmd[0])
		if err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(bin, append(cmd[1:], "-h")...).CombinedOutput()
		if strings.Contains(string(out), "not defined") || !strings.Contains(string(out), "-temporal-address") {
			t.Errorf("%s %q: %s", svc.name, cmd, out)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
