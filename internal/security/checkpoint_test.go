package security_test

// Attacks on kernel checkpoints: a checkpoint is a pickle, and loading a
// pickle runs code, so a restore must load only the exact file that a save
// reported complete (its sha256 is recorded outside the file's folder).

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/executor/runner"
)

// kernelSteps runs steps through the runner's kernel driver (real kernels on
// jupyter_client, the checkpoint library bootstrapped) and returns, per step,
// whether it succeeded, its value and its error.
func kernelSteps(t *testing.T, steps ...map[string]any) []struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
} {
	t.Helper()
	boot := filepath.Join(t.TempDir(), "bootstrap.py")
	if err := os.WriteFile(boot, []byte(runner.CheckpointBootstrap()), 0o600); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(steps)
	cmd := exec.Command(runner.DefaultPython, filepath.Join("..", "executor", "runner", "testdata", "kernel_driver.py"), boot)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res []struct {
		OK    bool            `json:"ok"`
		Value json.RawMessage `json:"value"`
		Error string          `json:"error"`
	}
	if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil || len(res) != len(steps) {
		t.Fatalf("kernel driver: %v %v\n%s\n%s", err, jerr, out, stderr.String())
	}
	return res
}

func TestAttackCheckpointReplacedByCodeRunningPickle(t *testing.T) {
	o := attack(t, "a saved kernel checkpoint is replaced on disk by a pickle that runs a command when loaded")
	dir := t.TempDir()
	path := filepath.Join(dir, "cell-1.ckpt")
	call := func(fn string, args ...string) map[string]any {
		return map[string]any{"op": "call", "expr": "__import__(\"millrace_checkpoint\")." + fn + "(" + strings.Join(args, ", ") + ")"}
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	saved := kernelSteps(t,
		map[string]any{"op": "start"},
		map[string]any{"op": "run", "code": "x = 41"},
		call("save", q(path), "1", "mode='inline'"),
	)
	var summary struct {
		SHA256 string `json:"sha256"`
		State  string `json:"state"`
	}
	if !saved[2].OK || json.Unmarshal(saved[2].Value, &summary) != nil || summary.State != "complete" {
		t.Fatalf("save: %s %s", saved[2].Error, saved[2].Value)
	}

	// The replacement is a well-formed checkpoint file (stream and trailer)
	// whose pickle calls os.system: only the hash can tell it apart.
	marker := filepath.Join(dir, "pwned")
	stream := []byte("cos\nsystem\n(S'touch " + marker + "'\ntR.")
	trailer := binary.LittleEndian.AppendUint64(nil, 0)
	trailer = binary.LittleEndian.AppendUint64(trailer, uint64(len(stream)))
	evil := append(append(stream, trailer...), "MRCKPT01"...)
	if err := os.WriteFile(path, evil, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(evil)

	restored := kernelSteps(t,
		map[string]any{"op": "start"},
		call("restore", q(path), q(summary.SHA256)),
		map[string]any{"op": "call", "expr": "'x' in globals()"},
	)
	if restored[1].OK || !strings.Contains(restored[1].Error, "refusing to load it") {
		t.Errorf("restore of the replaced file: ok=%v error %q, want a refusal", restored[1].OK, restored[1].Error)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the replacement's command ran (%s exists: %v)", marker, err)
	}
	if string(restored[2].Value) != `"False"` {
		t.Errorf("the namespace changed after the refusal: 'x' in globals() = %s", restored[2].Value)
	}
	o.saw("restore refused (sha256 %s… is not the recorded %s…); the pickle's command did not run; no name set",
		hex.EncodeToString(sum[:])[:12], summary.SHA256[:12])
}
