package runner

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"strconv"
)

// CheckpointScript is the kernel-side checkpoint library
// (millrace_checkpoint.py): it runs inside the notebook's kernel and saves
// or restores the user namespace between cells with dill. It is embedded so
// that the runner can send it to a kernel with nothing installed besides
// python3-dill.
//
//go:embed millrace_checkpoint.py
var CheckpointScript []byte

// CheckpointModule is the name the library is registered under in the
// kernel's sys.modules; calls reach it as __import__(CheckpointModule).
const CheckpointModule = "millrace_checkpoint"

// CheckpointBootstrap is the code to send once to a kernel, as a silent
// execute_request, to install the library. It is one expression statement
// inside an if, so that IPython displays nothing and binds no name (not even
// _): the user's namespace, which the checkpoints save, stays the notebook's
// own. The source is registered in linecache under a name no file has, so a
// traceback through the library shows its own lines, not those of a file
// that happens to share its name in the kernel's working directory.
// Installing twice keeps the first module, and with it any forked save still
// in flight.
func CheckpointBootstrap() string {
	src := base64.StdEncoding.EncodeToString(CheckpointScript)
	name := strconv.Quote(CheckpointModule)
	file := strconv.Quote("<" + CheckpointModule + ">")
	return fmt.Sprintf(`if True:
    (lambda sys, types, linecache, src: sys.modules.get(%[1]s) or (lambda m: (
        linecache.cache.__setitem__(%[2]s, (len(src), None, src.decode().splitlines(True), %[2]s)),
        exec(compile(src, %[2]s, "exec"), m.__dict__),
        sys.modules.__setitem__(%[1]s, m)))(types.ModuleType(%[1]s)))(
        __import__("sys"), __import__("types"), __import__("linecache"),
        __import__("base64").b64decode("%[3]s"))
`, name, file, src)
}
