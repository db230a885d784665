package runner

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"millrace/internal/failure"
)

// pythonConstants has python read the embedded script's module-level
// KIND_* and EXIT_* assignments (parsed, not imported: importing needs no
// Jupyter library, and runs nothing). The script is the one the binaries
// embed, so what is checked is what runs.
func pythonConstants(t *testing.T) (kinds map[string]string, exits map[string]int) {
	t.Helper()
	const prog = `
import ast, json, sys
kinds, exits = {}, {}
for node in ast.parse(sys.stdin.read()).body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        name = node.targets[0].id
        if name.startswith("KIND_"):
            kinds[name] = ast.literal_eval(node.value)
        elif name.startswith("EXIT_") and isinstance(node.value, ast.Constant):
            exits[name] = node.value.value
print(json.dumps({"kinds": kinds, "exits": exits}))
`
	cmd := exec.Command(DefaultPython, "-c", prog)
	cmd.Stdin = strings.NewReader(string(Script))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read the runner's constants with %s: %v", DefaultPython, err)
	}
	var got struct {
		Kinds map[string]string `json:"kinds"`
		Exits map[string]int    `json:"exits"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("runner constants %s: %v", out, err)
	}
	if len(got.Kinds) == 0 || len(got.Exits) == 0 {
		t.Fatalf("found no KIND_* or EXIT_* constants in the script: %s", out)
	}
	return got.Kinds, got.Exits
}

// goExits lists the Exit* constants declared in this package's Go source,
// so that one added on the Go side alone is caught too.
func goExits(t *testing.T) map[string]int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "runner.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	exits := map[string]int{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Exit") {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					t.Fatalf("%s is not an integer literal", name.Name)
				}
				v, err := strconv.Atoi(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				exits[name.Name] = v
			}
		}
	}
	return exits
}

// pythonName is the script's name of a Go constant: ExitKernelDied is
// EXIT_KERNEL_DIED, ExitSIGINT is EXIT_SIGINT.
func pythonName(goName string) string {
	var b strings.Builder
	for i, r := range goName {
		if i > 0 && r >= 'A' && r <= 'Z' && !(goName[i-1] >= 'A' && goName[i-1] <= 'Z') {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// TestVocabularyMatchesScript holds the script's result kinds and exit codes
// equal to Go's, both ways: every KIND_* of the script is one of Kinds (named
// KIND_<VALUE>) and every one of Kinds is in the script; every EXIT_* has a
// Go Exit* of the same name and value, and the reverse.
func TestVocabularyMatchesScript(t *testing.T) {
	pyKinds, pyExits := pythonConstants(t)

	for name, value := range pyKinds {
		if !slices.Contains(Kinds(), failure.Kind(value)) {
			t.Errorf("the script's %s = %q is not in runner.Kinds: add it to package failure and to Kinds", name, value)
		}
		if want := "KIND_" + strings.ToUpper(value); name != want {
			t.Errorf("the script names %q %s, want %s", value, name, want)
		}
	}
	for _, k := range Kinds() {
		name := "KIND_" + strings.ToUpper(string(k))
		if got, ok := pyKinds[name]; !ok {
			t.Errorf("runner.Kinds has %q; the script has no %s", k, name)
		} else if got != string(k) {
			t.Errorf("runner.Kinds has %q; the script has %s = %q", k, name, got)
		}
	}

	goExit := goExits(t)
	for name, code := range goExit {
		py := pythonName(name)
		if _, ok := pyExits[py]; !ok {
			t.Errorf("Go's %s = %d; the script has no %s", name, code, py)
		}
	}
	for name, code := range pyExits {
		found := false
		for goName, goCode := range goExit {
			if pythonName(goName) == name {
				found = true
				if goCode != code {
					t.Errorf("the script's %s = %d, Go's %s = %d", name, code, goName, goCode)
				}
			}
		}
		if !found {
			t.Errorf("the script's %s = %d has no Exit constant in Go", name, code)
		}
	}
}
