package devmode

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"millrace/internal/atomicfile"
	"millrace/internal/connect"
	"millrace/internal/filemode"
)

// The dev service runs notebooks, that is code, as the user who started it.
// Whoever can reach its Temporal frontend can make it do so, so the
// frontend serves only callers that send the token kept in the data dir's
// private dev folder, and nothing under the data dir is readable by others.

// tokenName is the file under <data dir>/dev/ holding the frontend's token.
const tokenName = "token"

// AllowCLIEnv names the opt-in to run a user's `temporal` CLI as the dev
// server. The CLI cannot require the token: any local user could then
// start runs, that is run code, as the dev service's user.
const AllowCLIEnv = "MILLRACE_DEV_ALLOW_UNAUTHENTICATED_CLI"

// TokenFile is where the dev service keeps the token its Temporal server
// requires from every client.
func TokenFile(dataDir string) string { return filepath.Join(Dir(dataDir), tokenName) }

// ClientOption makes a client present the token of the dev service on
// dataDir.
func ClientOption(dataDir string) connect.Option {
	return connect.WithBearerTokenFile(TokenFile(dataDir))
}

// ensureToken keeps the token across restarts, as the port is kept, so a
// long-lived client (an MCP server) goes on working when the service
// restarts; deleting the file makes a new one at the next start.
func ensureToken(dataDir string) error {
	path := TokenFile(dataDir)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return os.Chmod(path, filemode.PrivateFile)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	return atomicfile.Write(path, []byte(hex.EncodeToString(raw)+"\n"), filemode.PrivateFile)
}

// tighten brings an existing data dir made by an older millrace (0755
// folders, 0644 files) to the modes of this one: the data dir to
// filemode.Dir, and the dev folder, its files and the Temporal database
// private. With the data dir closed, run folders below it are out of
// others' reach whatever their own modes. What it changes, or cannot
// change, it logs.
func tighten(dataDir string, logger *slog.Logger) {
	set := func(path string, want os.FileMode) {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&os.ModeSymlink != 0 || fi.Mode().Perm() == want {
			return
		}
		if err := os.Chmod(path, want); err != nil {
			logger.Warn("others may read millrace's files: cannot change their mode", "path", path, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()), "error", err)
			return
		}
		logger.Warn("changed the mode of a millrace file, so that others cannot read it", "path", path, "from", fmt.Sprintf("%#o", fi.Mode().Perm()), "to", fmt.Sprintf("%#o", want))
	}
	set(dataDir, filemode.Dir)
	set(Dir(dataDir), filemode.PrivateDir)
	entries, _ := os.ReadDir(Dir(dataDir))
	for _, e := range entries {
		if e.Type().IsRegular() {
			set(filepath.Join(Dir(dataDir), e.Name()), filemode.PrivateFile)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
		set(filepath.Join(dataDir, DBName+suffix), filemode.PrivateFile)
	}
}

// serviceEnvNames are the variables the dev service keeps from the client
// that starts it; MILLRACE_ and LC_ settings match as prefixes. The service
// outlives that client and serves every other one, so it must not carry
// one client's secrets (API keys, MCP tokens, cloud credentials) into
// every notebook it runs. What it keeps: what a process needs to find
// programs and the user's files (PATH, HOME, USER, the XDG folders, a temp
// dir, the locale and time zone), what picks the Python that runs
// notebooks (a virtualenv or conda environment, PYTHONPATH), and the
// worker's own settings.
var serviceEnvNames = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_", "TZ", "TMPDIR",
	"XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
	"VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
	"MILLRACE_",
}

// serviceEnvDenied are settings of clients only, dropped even though they
// match MILLRACE_: the background service serves neither MCP nor metrics,
// and the tokens of those are secrets; a client's roots are that client's,
// not those of the service's worker (MILLRACE_WORKER_ROOTS).
var serviceEnvDenied = map[string]bool{
	"MILLRACE_MCP_TOKEN": true, "MILLRACE_METRICS_TOKEN": true, "MILLRACE_METRICS": true,
	"MILLRACE_ROOTS": true,
}

// serviceEnv builds the dev service's environment from a client's.
func serviceEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if serviceEnvDenied[k] {
			continue
		}
		for _, name := range serviceEnvNames {
			if k == name || (strings.HasSuffix(name, "_") && strings.HasPrefix(k, name)) {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}

// checkServer refuses to run a `temporal` CLI as the dev server unless the
// user opted in: it cannot require the token, and it serves an HTTP API
// that any web page the user opens can post to.
func checkServer(bin string, isCLI bool) error {
	if !isCLI || os.Getenv(AllowCLIEnv) == "1" {
		return nil
	}
	return fmt.Errorf("the dev server would be the temporal CLI (%s), which cannot require millrace's token: any local user, and any web page through its HTTP API, could then run notebooks, that is code, as you. Build millrace-temporal (`make devserver`) and put it beside millrace or on PATH, or point MILLRACE_TEMPORAL_BIN at it; or, on a machine only you use, set %s=1 to accept this", bin, AllowCLIEnv)
}
