// Package metricstest reads a real /metrics page over HTTP for tests: the
// integration tests and the dashboard check assert on what a Prometheus
// server would scrape, not on the registry's insides.
package metricstest

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one line of the page; a histogram gives its _bucket, _sum and
// _count lines, as PromQL sees them.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Page is a scraped page.
type Page []Sample

// Scrape fetches and parses url, sending token as a bearer token when set.
func Scrape(url, token string) (Page, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	var page Page
	for name, f := range families {
		for _, m := range f.GetMetric() {
			page = append(page, flatten(name, m)...)
		}
	}
	return page, nil
}

func flatten(name string, m *dto.Metric) []Sample {
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	with := func(k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range labels {
			out[a] = b
		}
		return out
	}
	switch {
	case m.Counter != nil:
		return []Sample{{name, labels, m.GetCounter().GetValue()}}
	case m.Gauge != nil:
		return []Sample{{name, labels, m.GetGauge().GetValue()}}
	case m.Untyped != nil:
		return []Sample{{name, labels, m.GetUntyped().GetValue()}}
	case m.Histogram != nil:
		h := m.GetHistogram()
		out := []Sample{
			{name + "_sum", labels, h.GetSampleSum()},
			{name + "_count", labels, float64(h.GetSampleCount())},
		}
		for _, b := range h.GetBucket() {
			out = append(out, Sample{name + "_bucket", with("le", formatBound(b.GetUpperBound())), float64(b.GetCumulativeCount())})
		}
		return append(out, Sample{name + "_bucket", with("le", "+Inf"), float64(h.GetSampleCount())})
	case m.Summary != nil:
		s := m.GetSummary()
		out := []Sample{
			{name + "_sum", labels, s.GetSampleSum()},
			{name + "_count", labels, float64(s.GetSampleCount())},
		}
		for _, q := range s.GetQuantile() {
			out = append(out, Sample{name, with("quantile", formatBound(q.GetQuantile())), q.GetValue()})
		}
		return out
	}
	return nil
}

func formatBound(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Sum adds the values of name's samples whose labels include match.
func (p Page) Sum(name string, match map[string]string) float64 {
	var sum float64
	for _, s := range p {
		if s.Name == name && includes(s.Labels, match) {
			sum += s.Value
		}
	}
	return sum
}

// Has reports whether the page has a sample of name with labels including
// match.
func (p Page) Has(name string, match map[string]string) bool {
	for _, s := range p {
		if s.Name == name && includes(s.Labels, match) {
			return true
		}
	}
	return false
}

// Names maps every sample name on the page to the label names seen on it.
func (p Page) Names() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, s := range p {
		if out[s.Name] == nil {
			out[s.Name] = map[string]bool{}
		}
		for l := range s.Labels {
			out[s.Name][l] = true
		}
	}
	return out
}

func includes(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Wait scrapes url until cond holds, failing t after timeout with the last
// error or what was waited for. Counters reach the page up to a second
// after they are recorded (metrics.ReportEvery), so tests poll.
func Wait(t testing.TB, url, token string, timeout time.Duration, what string, cond func(Page) bool) Page {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		page, err := Scrape(url, token)
		if err == nil && cond(page) {
			return page
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("scrape %s: %v", url, err)
			}
			t.Fatalf("timed out after %s waiting for %s on %s", timeout, what, url)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
