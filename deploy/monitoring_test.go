package deploy

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"gopkg.in/yaml.v3"

	"millrace/internal/connect"
	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/metrics"
	"millrace/internal/metrics/metricstest"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestPrometheusAndGrafanaConfig checks that Prometheus scrapes the ports
// the worker and MCP commands serve metrics on, with the token the compose
// file hands it, and that Grafana reads that Prometheus and the dashboard.
func TestPrometheusAndGrafanaConfig(t *testing.T) {
	root := testenv.RepoRoot()
	c := readCompose(t)

	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			DNSSD []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
			Static []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(root, "deploy", "prometheus", "prometheus.yml"), &prom)
	p := c.Services["prometheus"]
	if !contains(p.Volumes, "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro") || !contains(p.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus does not load deploy/prometheus/prometheus.yml: %v %v", p.Volumes, p.Command)
	}
	if !contains(p.Secrets, "metrics_token") {
		t.Errorf("prometheus lacks the metrics_token secret: %v", p.Secrets)
	}
	// Every scrape target, as host:port, with how it authenticates.
	scraped := map[string]string{}
	for _, sc := range prom.ScrapeConfigs {
		auth := sc.Authorization.CredentialsFile
		if sc.Authorization.Type != "" && sc.Authorization.Type != "Bearer" {
			auth = ""
		}
		for _, d := range sc.DNSSD {
			for _, n := range d.Names {
				scraped[net.JoinHostPort(n, strconv.Itoa(d.Port))] = auth
			}
		}
		for _, s := range sc.Static {
			for _, tg := range s.Targets {
				scraped[tg] = auth
			}
		}
	}
	for _, name := range []string{"worker", "mcp"} {
		_, port, err := net.SplitHostPort(flagValue(c.Services[name].Command, "--metrics"))
		if err != nil {
			t.Errorf("%s --metrics: %v", name, err)
			continue
		}
		auth, ok := scraped[net.JoinHostPort(name, port)]
		if !ok {
			t.Errorf("prometheus does not scrape %s:%s (targets %v)", name, port, scraped)
		} else if auth != "/run/secrets/metrics_token" {
			t.Errorf("prometheus scrapes %s with credentials %q, want the metrics_token secret's file", name, auth)
		}
	}

	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(root, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" || !contains(p.Ports, "127.0.0.1:9090:9090") {
		t.Errorf("grafana's datasource %+v is not the compose file's prometheus (ports %v)", ds.Datasources, p.Ports)
	}
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(root, "deploy", "grafana", "provisioning", "dashboards", "millrace.yml"), &dp)
	g := c.Services["grafana"]
	mounted := ""
	for _, v := range g.Volumes {
		if parts := strings.Split(v, ":"); parts[0] == "./deploy/grafana/millrace.json" {
			mounted = parts[1]
		}
	}
	if len(dp.Providers) != 1 || mounted == "" || path.Dir(mounted) != dp.Providers[0].Options.Path {
		t.Errorf("grafana loads dashboards from %+v but millrace.json is mounted at %q", dp.Providers, mounted)
	}
	if !contains(g.Volumes, "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro") {
		t.Errorf("grafana does not mount the provisioning folder: %v", g.Volumes)
	}
}

// dashboard is the part of Grafana's dashboard JSON the check reads.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
		} `json:"targets"`
	} `json:"panels"`
}

var (
	metricName  = regexp.MustCompile(`\b(?:millrace|temporal)_[a-zA-Z0-9_]+`)
	braces      = regexp.MustCompile(`\{([^}]*)\}`)
	matcher     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	byClause    = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
	legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	labelValues = regexp.MustCompile(`label_values\(\s*\w+\s*,\s*(\w+)\s*\)`)
)

// TestDashboardQueriesEmittedMetrics runs a notebook on a worker and calls
// an MCP tool, both recording into a real metrics listener, scrapes it, and
// checks that every query of deploy/grafana/millrace.json names metrics and
// labels that are on that page: a renamed metric breaks this test rather
// than a panel.
func TestDashboardQueriesEmittedMetrics(t *testing.T) {
	var d dashboard
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "grafana", "millrace.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/millrace.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard has no uid or title")
	}

	page := emitEverything(t)
	names := page.Names()
	type query struct{ where, expr, legend string }
	var queries []query
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			queries = append(queries, query{"variable " + v.Name, v.Definition, ""})
		}
	}
	panels := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		panels++
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries = append(queries, query{"panel " + p.Title, tg.Expr, tg.LegendFormat})
		}
	}
	if panels < 10 {
		t.Errorf("%d panels, want at least the 10 the README lists", panels)
	}
	used := map[string]bool{}
	for _, q := range queries {
		metricsIn := metricName.FindAllString(q.expr, -1)
		if len(metricsIn) == 0 {
			t.Errorf("%s: %q names no millrace_ or temporal_ metric", q.where, q.expr)
		}
		var labels []string
		for _, b := range braces.FindAllStringSubmatch(q.expr, -1) {
			for _, m := range matcher.FindAllStringSubmatch(b[1], -1) {
				labels = append(labels, m[1])
			}
		}
		var by []string
		for _, m := range byClause.FindAllStringSubmatch(q.expr, -1) {
			for _, l := range strings.Split(m[1], ",") {
				by = append(by, strings.TrimSpace(l))
			}
		}
		labels = append(labels, by...)
		// label_values(metric, label) names a label too.
		if m := labelValues.FindStringSubmatch(q.expr); m != nil {
			labels = append(labels, m[1])
		}
		for _, name := range metricsIn {
			used[name] = true
			have, ok := names[name]
			if !ok {
				t.Errorf("%s: %s is not on a real metrics page", q.where, name)
				continue
			}
			for _, l := range labels {
				if !have[l] {
					t.Errorf("%s: %s has no label %q", q.where, name, l)
				}
			}
		}
		for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
			if !contains(by, m[1]) {
				t.Errorf("%s: legend {{%s}} is not a label the query keeps (by %v)", q.where, m[1], by)
			}
		}
	}
	// The product's metrics all have a panel.
	for name := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "millrace_") && !used[name] && !used[base+"_bucket"] {
			t.Errorf("%s is on the page but on no panel", name)
		}
	}
	var list []string
	for n := range used {
		list = append(list, n)
	}
	sort.Strings(list)
	t.Logf("the dashboard queries %d metrics: %s", len(list), strings.Join(list, " "))
}

// emitEverything makes a worker and an MCP server record into one metrics
// listener, as the compose file's services do, and returns its page once a
// notebook run and a tool call show on it.
func emitEverything(t *testing.T) metricstest.Page {
	t.Helper()
	ms, err := metrics.Start("127.0.0.1:0", "", testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	cfg := server.Config(t)
	root := t.TempDir()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "internal", "metrics", "testdata", "ok.ipynb"), root)
	server.StartWorker(t, cfg, connect.WithMetrics(ms.Handler()))
	svc := server.Service(t, cfg, root)

	mc := testenv.MCPClient(t, mcpserver.New(svc, mcpserver.Options{Logger: testenv.Logger(), Metrics: ms.Handler()}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "start_notebook", map[string]any{"path": nb}
	res, err := mc.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("start_notebook: %v %+v", err, res)
	}
	var started jobs.Started
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &started); err != nil || started.JobID == "" {
		t.Fatalf("start_notebook result %s: %v", b, err)
	}
	if st, err := svc.WaitEnded(ctx, started.JobID, 3*time.Minute, nil); err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("run ended %s (%v)", st.Status, err)
	}
	return metricstest.Wait(t, ms.URL(), "", time.Minute, "the run and the tool call", func(p metricstest.Page) bool {
		return p.Sum(workflows.RunsEndedMetric, nil) == 1 && p.Sum(mcpserver.ToolCallsMetric, nil) >= 1
	})
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
