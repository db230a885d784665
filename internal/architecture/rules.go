package architecture

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Module is the module path every rule's package names are relative to.
const Module = "millrace"

// temporalUsers are the only packages that may import go.temporal.io: the
// workflow and activity code, the client side that talks to a server, the
// worker host, the recorded histories' replayer, and the test set-up.
// Every other package (a new one too) is Temporal-free, so it can be tested
// and reused without a server. The codec imports only the SDK's converter
// interfaces it implements.
var temporalUsers = set(
	"workflows", "activities",
	"internal/codec", "internal/connect", "internal/devmode", "internal/jobs",
	"internal/mcpserver", "internal/metrics", "internal/nbworker",
	"internal/testenv", "internal/testcluster", "internal/history", "cmd/millrace",
)

// workflowStd is the standard library that workflow code may use: nothing
// that reads the clock, the environment, files, the network or randomness,
// and no goroutines' sync (the workflow package has its own).
var workflowStd = set(
	"encoding/json", "errors", "fmt", "maps", "path", "slices", "sort",
	"strconv", "strings", "time", "unicode", "unicode/utf8",
)

// workflowSDK is the part of the Temporal SDK workflow code may use.
var workflowSDK = []string{
	"go.temporal.io/sdk/workflow", "go.temporal.io/sdk/temporal",
	"go.temporal.io/api/enums/v1",
}

// workflowInternal are the millrace packages workflow code may import.
// The failure vocabulary is held to the same rule as workflow code itself
// (workflowPure). The notebook package is there for its types only (a
// cell's failure, as the activity reports it): workflow code calls none of
// its functions.
var workflowInternal = set("internal/notebook", "internal/failure")

// workflowPure are packages that workflow code uses in full: they follow
// the workflow import rule themselves.
var workflowPure = set("internal/failure")

// runsCode are the packages that start processes and run notebooks: only a
// worker may reach them. The client side (jobs, mcpserver) never does, so an
// MCP server or CLI that only starts and reads jobs cannot run code itself.
var runsCode = set("activities", "internal/executor", "internal/nbworker", "internal/warmpool")

// clientSide must not reach runsCode, directly or through another package.
var clientSide = set("internal/jobs", "internal/mcpserver")

// importedOnlyBy limits who may import a package: the activities are
// registered by the worker host alone, and the executor is the one
// supervisor of child processes: the worker host resolves which executor
// to use, the activities run it, and the dev service starts the embedded
// server through it, and the warm pool starts its zygotes through it and
// writes its scripts where the runner's are (the test cluster takes only
// the name of the attempt marker it sets, which its notebooks record).
var importedOnlyBy = map[string]map[string]bool{
	"activities":        set("internal/nbworker", "internal/testenv"),
	"internal/executor": set("activities", "internal/devmode", "internal/nbworker", "internal/testcluster", "internal/warmpool"),
	"internal/testenv":  set(), // test set-up: _test files and test helper packages only
}

// testHelper reports whether p is a package of test helpers (its name ends
// in "test", as metricstest, or is a test set-up of its own, as
// testcluster): those may use the test set-up.
func testHelper(p string) bool {
	base := path.Base(p)
	return strings.HasSuffix(base, "test") || strings.HasPrefix(base, "test")
}

// Package is one package of the module and what its non-test files import.
type Package struct {
	Path    string   // relative to Module: "internal/jobs"
	Imports []string // full import paths
}

// Check returns every broken rule, one line each, sorted; none is nil.
func Check(pkgs []Package) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	deps := map[string][]string{}
	for _, p := range pkgs {
		deps[p.Path] = p.Imports
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			own, isOwn := strings.CutPrefix(imp, Module+"/")
			switch {
			case isOwn && strings.HasPrefix(own, "cmd/"):
				fail("%s imports %s: a command is a main package; move what they share into internal/", p.Path, own)
			case isOwn && importedOnlyBy[own] != nil && !importedOnlyBy[own][p.Path] && !strings.HasPrefix(p.Path, own+"/") && !(own == "internal/testenv" && testHelper(p.Path)):
				fail("%s imports %s, which only %s may import", p.Path, own, keys(importedOnlyBy[own]))
			case strings.HasPrefix(imp, "go.temporal.io/") && !temporalUsers[p.Path] && !under(p.Path, temporalUsers):
				fail("%s imports %s: it is a Temporal-free package (ARCHITECTURE.md lists the packages that may use Temporal)", p.Path, imp)
			}
			if (p.Path == "workflows" || workflowPure[p.Path]) && !workflowSafe(imp) {
				fail("%s imports %s: workflow code must be deterministic and may import only %s, %s and millrace/%s", p.Path, imp, keys(workflowStd), strings.Join(workflowSDK, ", "), keys(workflowInternal))
			}
		}
		if clientSide[p.Path] {
			for _, reached := range reach(p.Path, deps) {
				if runsCode[reached] {
					fail("%s reaches %s: the client side starts and reads jobs but never runs code", p.Path, reached)
				}
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func workflowSafe(imp string) bool {
	if own, ok := strings.CutPrefix(imp, Module+"/"); ok {
		return workflowInternal[own]
	}
	for _, sdk := range workflowSDK {
		if imp == sdk {
			return true
		}
	}
	return workflowStd[imp]
}

// reach lists the module's packages that from imports, transitively.
func reach(from string, deps map[string][]string) []string {
	seen := map[string]bool{}
	var out []string
	var walk func(string)
	walk = func(p string) {
		for _, imp := range deps[p] {
			own, ok := strings.CutPrefix(imp, Module+"/")
			if !ok || seen[own] {
				continue
			}
			seen[own] = true
			out = append(out, own)
			walk(own)
		}
	}
	walk(from)
	return out
}

// under reports whether p is a subpackage of one in s.
func under(p string, s map[string]bool) bool {
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if s[dir] {
			return true
		}
	}
	return false
}

func set(names ...string) map[string]bool {
	s := make(map[string]bool, len(names))
	for _, n := range names {
		s[n] = true
	}
	return s
}

func keys(s map[string]bool) string {
	if len(s) == 0 {
		return "no package (test files only)"
	}
	k := make([]string, 0, len(s))
	for n := range s {
		k = append(k, n)
	}
	sort.Strings(k)
	return strings.Join(k, ", ")
}
