// Package deploy holds the container setup (docker-compose.yml at the
// repository root, deploy/Dockerfile, and the Prometheus and Grafana
// configuration under deploy/). There is no container engine on the test
// machines, so these tests check the files' structure instead: the
// services, images, volumes, ports and secrets, that every command line
// uses flags the binaries really have, that Prometheus scrapes what the
// services serve, and that the dashboard queries metrics a real metrics
// page has.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"millrace/internal/metrics"
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
		DependsOn   dependsOn                                     `yaml:"depends_on"`
		Container   string                                        `yaml:"container_name"`
		Secrets     []string                                      `yaml:"secrets"`
		Restart     string                                        `yaml:"restart"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
	Secrets map[string]struct {
		Environment string `yaml:"environment"`
	} `yaml:"secrets"`
}

// dependsOn maps each service a service waits for to the condition it
// waits on. Compose takes a list (each one: service_started) or a map.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			(*d)[name] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, v := range m {
		if v.Condition == "" {
			v.Condition = "service_started"
		}
		(*d)[name] = v.Condition
	}
	return nil
}

// readCompose parses docker-compose.yml.
func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func TestComposeFile(t *testing.T) {
	root := testenv.RepoRoot()
	c := readCompose(t)
	for _, name := range []string{"postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "worker", "mcp", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
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
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("service %s mounts %s from the repository: %v", name, src, err)
				}
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("service %s uses undeclared secret %s", name, sec)
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
	// The worker and the MCP server serve metrics to Prometheus across the
	// compose network, so beyond loopback, so with a required token.
	for _, name := range []string{"worker", "mcp"} {
		s := c.Services[name]
		addr := flagValue(s.Command, "--metrics")
		if addr == "" || strings.HasPrefix(addr, "127.") {
			t.Errorf("%s: --metrics %q, want a non-loopback address Prometheus can reach", name, addr)
		}
		if tok := s.Environment[metrics.TokenEnv]; !strings.HasPrefix(tok, "${"+metrics.TokenEnv+":?") {
			t.Errorf("%s: the metrics token must be required, got %q", name, tok)
		}
	}
	if sec := c.Secrets["metrics_token"]; sec.Environment != metrics.TokenEnv {
		t.Errorf("secret metrics_token comes from %q, want the environment's %s", sec.Environment, metrics.TokenEnv)
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

// flagValue returns the value after flag in a command line.
func flagValue(cmd []string, flag string) string {
	for i, a := range cmd {
		if a == flag && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
