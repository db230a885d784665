package failure

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// wire pins every value of the vocabulary: they are in result files, end
// records, recorded histories, retry policies and tool answers, so none may
// change. A new constant must be added here too (the test finds every
// constant in the source).
var wire = map[string]string{
	"KindOK":                "ok",
	"KindCellError":         "cell_error",
	"KindCellTimeout":       "cell_timeout",
	"KindKernelDied":        "kernel_died",
	"KindKernelStartFailed": "kernel_start_failed",
	"KindNoSuchKernel":      "no_such_kernel",
	"KindNoTranslator":      "no_translator",
	"KindBadNotebook":       "bad_notebook",
	"KindCanceled":          "canceled",
	"KindInternal":          "internal",
	"KindResumeFailed":      "resume_failed",
	"KindMemoryLimit":       "memory_limit",
	"KindExited":            "exited",
	"KindTimedOut":          "timed_out",
	"KindLost":              "lost",

	"TypeCellError":         "NotebookCellError",
	"TypeCellTimeout":       "CellTimeout",
	"TypeKernelDied":        "KernelDied",
	"TypeKernelStartFailed": "KernelStartFailed",
	"TypeNoSuchKernel":      "NoSuchKernel",
	"TypeNoTranslator":      "NoTranslator",
	"TypeBadInput":          "BadInput",
	"TypeExecutorExited":    "ExecutorExited",
	"TypeStorage":           "StorageError",
	"TypeMemoryLimit":       "MemoryLimitExceeded",
	"TypeResumeFailed":      "ResumeFailed",
	"TypeRunFailed":         "RunFailed",
	"TypeRunTimedOut":       "RunTimedOut",
	"TypeBatchFailed":       "BatchFailed",
	"TypeNotifyRejected":    "NotifyRejected",
	"TypeWorkerLost":        "WorkerLost",
	"TypeCanceled":          "Canceled",
	"TypeTerminated":        "Terminated",
	"TypeTimeout":           "Timeout",
	"TypeUnknown":           "Unknown",
}

// TestWireValues reads the package's source and checks each constant
// against wire, both ways, and that the package imports nothing.
func TestWireValues(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "failure.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Imports) > 0 {
		t.Errorf("package failure imports %d packages; workflow code uses it, so it must import none", len(f.Imports))
	}
	seen := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				got, _ := strconv.Unquote(lit.Value)
				want, pinned := wire[name.Name]
				switch {
				case !pinned:
					t.Errorf("%s = %q is not pinned in this test's wire table: add it", name.Name, got)
				case got != want:
					t.Errorf("%s = %q, but %q is on the wire: add a new constant instead of changing one", name.Name, got, want)
				}
				seen[name.Name] = true
			}
		}
	}
	for name := range wire {
		if !seen[name] {
			t.Errorf("%s is pinned but no longer declared: recorded values still use it", name)
		}
	}
}

// TestKindType checks the failure type and retryability of each kind an
// attempt can fail with: the retry policy and clients depend on them.
func TestKindType(t *testing.T) {
	for _, c := range []struct {
		kind         Kind
		typ          Type
		nonRetryable bool
	}{
		{KindCellError, TypeCellError, false}, // the run's retry_on_error decides
		{KindCellTimeout, TypeCellTimeout, true},
		{KindKernelDied, TypeKernelDied, false},
		{KindKernelStartFailed, TypeKernelStartFailed, false},
		{KindNoSuchKernel, TypeNoSuchKernel, true},
		{KindNoTranslator, TypeNoTranslator, true},
		{KindBadNotebook, TypeBadInput, true},
		{KindMemoryLimit, TypeMemoryLimit, true},
		{KindResumeFailed, TypeResumeFailed, true},
		{KindCanceled, TypeExecutorExited, false}, // a signal from outside millrace
		{KindInternal, TypeExecutorExited, false},
		{KindExited, TypeExecutorExited, false},
	} {
		if typ, nonRetryable := c.kind.Type(); typ != c.typ || nonRetryable != c.nonRetryable {
			t.Errorf("%s.Type() = %s, %v; want %s, %v", c.kind, typ, nonRetryable, c.typ, c.nonRetryable)
		}
	}
}
