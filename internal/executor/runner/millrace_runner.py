#!/usr/bin/python3
"""millrace's bundled papermill-compatible notebook runner.

    millrace_runner.py INPUT OUTPUT [-f PARAMS.json] [-k KERNEL] [--cwd DIR]
        [--execution-timeout SECONDS] [--start-timeout SECONDS]
        [--result-file FILE]

It follows papermill's observable contract so that either can be the executor:
the `injected-parameters` cell after the `parameters` cell, metadata.papermill
on the notebook and on every cell, the output notebook saved at every code-cell
start and end, the error marker cells, exit 1 on a cell error, 138 on a dead
kernel, and SystemExit with no value (or 0) counted as success.

Cell output is echoed live: stdout streams and text/plain results to stdout;
stderr streams and tracebacks (ANSI stripped) to stderr. The runner's own
messages go to stderr, prefixed with "[millrace-runner]".

Exit codes: 0 ok, 1 cell error or cell timeout, 3 the notebook cannot run as
asked (bad notebook, no such kernel, no parameter translator), 4 the kernel did
not start, 5 internal error, 138 the kernel died, 130/143 canceled by
SIGINT/SIGTERM. --result-file receives a JSON summary on every path.

Needs Python 3 with nbclient, nbformat, jupyter_client and ipykernel (Debian:
python3-nbclient, python3-ipykernel). It uses nothing else outside the stdlib.
"""

import argparse
import asyncio
import datetime
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

VERSION = "millrace-runner 1"

# Exit codes and result kinds: millrace's Go code declares the same values
# (runner.Exit*, failure.Kind*, listed in runner.Kinds), and a Go test holds
# the two lists equal both ways. A new kind goes in both, named KIND_<VALUE>.
EXIT_OK = 0
EXIT_CELL_FAILED = 1
EXIT_SETUP = 3
EXIT_KERNEL_START = 4
EXIT_INTERNAL = 5
EXIT_KERNEL_DIED = 138
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_SIGNAL = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}

KIND_OK = "ok"
KIND_CELL_ERROR = "cell_error"
KIND_CELL_TIMEOUT = "cell_timeout"
KIND_KERNEL_DIED = "kernel_died"
KIND_KERNEL_START_FAILED = "kernel_start_failed"
KIND_NO_SUCH_KERNEL = "no_such_kernel"
KIND_NO_TRANSLATOR = "no_translator"
KIND_BAD_NOTEBOOK = "bad_notebook"
KIND_CANCELED = "canceled"
KIND_INTERNAL = "internal"

# papermill's error marker cells (papermill/execute.py), kept byte for byte.
ERROR_MARKER_TAG = "papermill-error-cell-tag"
ERROR_STYLE = (
    'style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;"'
)
ERROR_MESSAGE_TEMPLATE = (
    '<span ' + ERROR_STYLE + '>'
    "An Exception was encountered at '<a href=\"#papermill-error-cell\">In [%s]</a>'."
    '</span>'
)
ERROR_ANCHOR_MSG = (
    '<span id="papermill-error-cell" ' + ERROR_STYLE + '>'
    'Execution using papermill encountered an exception here and stopped:'
    '</span>'
)

DEFAULT_KERNEL = "python3"
AUTOSAVE_EVERY = 30.0  # seconds between saves while one cell runs (papermill's default)
FORCE_EXIT_AFTER = 8.0  # seconds after a signal before the runner exits regardless

ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text):
    return ANSI_RE.sub("", text)


def utcnow():
    # papermill records naive UTC ISO timestamps; keep the same shape.
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def say(msg):
    """Write one runner message to stderr."""
    sys.stderr.write("[millrace-runner] %s\n" % msg)
    sys.stderr.flush()


def shown_path(path):
    """The path to record and print: the worker may hand over a folder it
    checked as /proc/self/fd/N/name, which means nothing to a reader."""
    if path.startswith("/proc/self/fd/"):
        return os.path.realpath(path)
    return path


def write_atomic(path, text):
    """Write text to path through a temporary file in the same folder."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()


class RunFailure(Exception):
    """A failure with a result kind and exit code, raised before or around execution."""

    def __init__(self, kind, code, message):
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message


class Canceled(Exception):
    """Raised at a phase boundary once a signal has been received."""


# ---------------------------------------------------------------------------
# Parameters: papermill's PythonTranslator (papermill/translators.py) rules.


class PythonTranslator:
    @classmethod
    def translate_raw_str(cls, val):
        return "{}".format(val)

    @classmethod
    def translate_escaped_str(cls, str_val):
        if isinstance(str_val, str):
            str_val = str_val.encode("unicode_escape").decode("utf-8")
            str_val = str_val.replace('"', r"\"")
        return '"{}"'.format(str_val)

    @classmethod
    def translate_str(cls, val):
        return cls.translate_escaped_str(val)

    @classmethod
    def translate_none(cls, val):
        return cls.translate_raw_str(val)

    @classmethod
    def translate_int(cls, val):
        return cls.translate_raw_str(val)

    @classmethod
    def translate_float(cls, val):
        return cls.translate_raw_str(val)

    @classmethod
    def translate_bool(cls, val):
        return cls.translate_raw_str(val)

    @classmethod
    def translate_dict(cls, val):
        escaped = ", ".join(
            "{}: {}".format(cls.translate_str(k), cls.translate(v)) for k, v in val.items()
        )
        return "{{{}}}".format(escaped)

    @classmethod
    def translate_list(cls, val):
        escaped = ", ".join(cls.translate(v) for v in val)
        return "[{}]".format(escaped)

    @classmethod
    def translate(cls, val):
        if val is None:
            return cls.translate_none(val)
        if isinstance(val, str):
            return cls.translate_str(val)
        if isinstance(val, bool):  # before int: bool is an int
            return cls.translate_bool(val)
        if isinstance(val, int):
            return cls.translate_int(val)
        if isinstance(val, float):
            return cls.translate_float(val)
        if isinstance(val, dict):
            return cls.translate_dict(val)
        if isinstance(val, list):
            return cls.translate_list(val)
        return cls.translate_escaped_str(val)

    @classmethod
    def comment(cls, cmt_str):
        return "# {}".format(cmt_str).strip()

    @classmethod
    def assign(cls, name, str_val):
        return "{} = {}".format(name, str_val)

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        content = "{}\n".format(cls.comment(comment))
        for name, val in parameters.items():
            content += "{}\n".format(cls.assign(name, cls.translate(val)))
        return content


def find_translator(kernel_name, language):
    """papermill registers its Python translator under "python" (kernel or language)."""
    if kernel_name == "python" or (language or "").lower() == "python":
        return PythonTranslator
    return None


def find_first_tagged_cell_index(nb, tag):
    for idx, cell in enumerate(nb.cells):
        if tag in cell.get("metadata", {}).get("tags", []):
            return idx
    return -1


# ---------------------------------------------------------------------------
# Live output.


def echo_output(out):
    """Write one notebook output to the runner's stdout or stderr and flush."""
    kind = out.get("output_type")
    if kind == "stream":
        text = out.get("text", "")
        if isinstance(text, list):
            text = "".join(text)
        stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
        stream.write(text)
        stream.flush()
    elif kind in ("execute_result", "display_data"):
        data = out.get("data", {})
        if "text/plain" in data:
            text = data["text/plain"]
            if isinstance(text, list):
                text = "".join(text)
        elif data:
            images = [m for m in data if m.startswith("image/")]
            text = "[%s output]" % (images[0] if images else sorted(data)[0])
        else:
            return
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    elif kind == "error":
        text = strip_ansi("\n".join(out.get("traceback", []) or []))
        if not text:
            text = "%s: %s" % (out.get("ename", ""), out.get("evalue", ""))
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()


# ---------------------------------------------------------------------------
# The run.


class Run:
    """One execution of one notebook: state, result and output notebook."""

    def __init__(self, args):
        self.args = args
        self.nb = None
        self.client = None
        self.signal = None
        self.exec_task = None
        self.origin = {}  # id(cell) -> index in the input file (None: injected)
        self.current_index = None  # output-notebook index of the running code cell
        self.failed_cell = None  # (cell object, error dict)
        self.stopped_by_exit = False
        self.last_save = 0.0
        self.output_saved = False
        self.kernel_pgid = None
        self.ipc_dir = None  # the kernel's sockets
        self.result = {
            "status": "failed",
            "kind": KIND_INTERNAL,
            "message": "",
            "kernel_name": "",
            "kernel_defaulted": False,
            "language": "",
            "cells_total": 0,
            "cells_executed": 0,
            "warnings": [],
            "available_kernels": [],
            "cell": None,
        }

    # -- signals -----------------------------------------------------------

    def on_signal(self, signum):
        if self.signal is not None:
            return
        self.signal = signum
        say("received %s: stopping the run" % signal.Signals(signum).name)
        timer = threading.Timer(FORCE_EXIT_AFTER, self.force_exit)
        timer.daemon = True
        timer.start()
        if self.exec_task is not None and not self.exec_task.done():
            self.exec_task.cancel()

    def force_exit(self):
        """Last resort when shutdown hangs: kill the kernel's group and exit."""
        say("shutdown did not finish in %.0fs: exiting" % FORCE_EXIT_AFTER)
        if self.kernel_pgid:
            try:
                os.killpg(self.kernel_pgid, signal.SIGKILL)
            except OSError:
                pass
        self.result.update(status="failed", kind=KIND_CANCELED)
        if not self.result["message"]:
            self.result["message"] = "canceled by %s" % signal.Signals(self.signal).name
        try:
            self.write_result()
        except Exception:
            pass
        os._exit(EXIT_SIGNAL.get(self.signal, EXIT_SIGTERM))

    def check_canceled(self):
        if self.signal is not None:
            raise Canceled()

    # -- notebook ------------------------------------------------------------

    def warn(self, msg):
        self.result["warnings"].append(msg)
        say("warning: " + msg)

    def load(self):
        import nbformat

        path = self.args.input
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            nb = nbformat.reads(text, as_version=4)
            if nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
                raise ValueError("not an nbformat v4 notebook")
            nb = nbformat.v4.upgrade(nb, from_version=4, from_minor=nb.get("nbformat_minor", 0))
            nb.setdefault("metadata", nbformat.NotebookNode())
            for cell in nb.cells:
                if not isinstance(cell, dict) or "cell_type" not in cell:
                    raise ValueError("a cell has no cell_type")
                cell.setdefault("metadata", nbformat.NotebookNode())
                if isinstance(cell.get("source"), list):
                    cell.source = "".join(cell.source)
                cell.setdefault("source", "")
        except Exception as e:
            raise RunFailure(
                KIND_BAD_NOTEBOOK, EXIT_SETUP, "cannot read notebook %s: %s" % (path, e)
            )
        # papermill's remove_error_markers: drop markers left by earlier runs. A
        # failing cell is still reported by its index in the file as written.
        kept = [
            (idx, c) for idx, c in enumerate(nb.cells)
            if ERROR_MARKER_TAG not in c.metadata.get("tags", [])
        ]
        nb.cells = [c for _, c in kept]
        self.origin = {id(c): idx for idx, c in kept}
        self.nb = nb

    def load_parameters(self):
        params = {}
        for path in self.args.parameters_file or []:
            try:
                with open(path, encoding="utf-8") as f:
                    value = json.load(f)
            except Exception as e:
                raise RunFailure(
                    KIND_INTERNAL, EXIT_INTERNAL, "cannot read parameters file %s: %s" % (path, e)
                )
            if not isinstance(value, dict):
                raise RunFailure(
                    KIND_INTERNAL,
                    EXIT_INTERNAL,
                    "parameters file %s must hold a JSON object (name -> value)" % path,
                )
            params.update(value)
        return params

    def resolve_kernel(self, specs):
        """Pick the kernel name and language, the way papermill reads them."""
        ks = self.nb.metadata.get("kernelspec") or {}
        name = self.args.kernel or ks.get("name")
        if not name:
            name = DEFAULT_KERNEL
            self.result["kernel_defaulted"] = True
            self.warn("No kernel name found in notebook; using the default kernel %s" % DEFAULT_KERNEL)
        language = None
        spec_dir = specs.get(name) or specs.get(name.lower())
        if spec_dir:
            try:
                with open(os.path.join(spec_dir, "kernel.json"), encoding="utf-8") as f:
                    language = json.load(f).get("language")
            except Exception:
                language = None
        if not language and (not self.args.kernel or self.args.kernel == ks.get("name")):
            language = ks.get("language")
        if not language:
            language = (self.nb.metadata.get("language_info") or {}).get("name")
        self.result["kernel_name"] = name
        self.result["language"] = language or ""
        return name, language, spec_dir

    def parameterize(self, params, kernel_name, language):
        import nbformat

        translator = find_translator(kernel_name, language)
        source = translator.codify(params)
        newcell = nbformat.v4.new_code_cell(source=source)
        newcell.metadata["tags"] = ["injected-parameters"]
        self.origin[id(newcell)] = None
        cells = self.nb.cells
        param_idx = find_first_tagged_cell_index(self.nb, "parameters")
        injected_idx = find_first_tagged_cell_index(self.nb, "injected-parameters")
        if injected_idx >= 0:
            before, after = cells[:injected_idx], cells[injected_idx + 1:]
        elif param_idx >= 0:
            before, after = cells[: param_idx + 1], cells[param_idx + 1:]
        else:
            self.warn("Input notebook does not contain a cell with tag 'parameters'")
            before, after = [], cells
        self.nb.cells = before + [newcell] + after

    def prepare_metadata(self, params):
        self.nb.metadata["papermill"] = {
            "parameters": params,
            "default_parameters": {},
            "input_path": shown_path(self.args.input),
            "output_path": shown_path(self.args.output),
            "start_time": utcnow().isoformat(),
            "end_time": None,
            "duration": None,
            "exception": None,
            "environment_variables": {},
            "version": VERSION,
        }
        for cell in self.nb.cells:
            if cell.get("execution_count") is not None:
                cell.execution_count = None
            if cell.get("outputs") is not None:
                cell.outputs = []
            cell.metadata["papermill"] = {
                "exception": None,
                "start_time": None,
                "end_time": None,
                "duration": None,
                "status": "pending",
            }
        self.result["cells_total"] = sum(1 for c in self.nb.cells if c.cell_type == "code")

    def save(self):
        import nbformat

        write_atomic(self.args.output, nbformat.v4.writes(self.nb) + "\n")
        self.last_save = time.monotonic()
        self.output_saved = True

    def autosave(self):
        if time.monotonic() - self.last_save >= AUTOSAVE_EVERY:
            self.save()

    # -- cell bookkeeping --------------------------------------------------

    def cell_start(self, cell):
        pm = cell.metadata["papermill"]
        pm["start_time"] = utcnow().isoformat()
        pm["status"] = "running"
        pm["exception"] = False

    def cell_end(self, cell, failed=False):
        pm = cell.metadata["papermill"]
        end = utcnow()
        pm["end_time"] = end.isoformat()
        if pm.get("start_time"):
            start = datetime.datetime.fromisoformat(pm["start_time"])
            pm["duration"] = (end - start).total_seconds()
        if failed:
            pm["status"] = "failed"
            pm["exception"] = True
            self.nb.metadata["papermill"]["exception"] = True
        elif pm["status"] != "failed":
            pm["status"] = "completed"
        if cell.cell_type == "code":
            self.result["cells_executed"] += 1

    def cell_error_info(self, cell, ename, evalue, tb_lines):
        source = cell.get("source", "")
        excerpt = "\n".join(source.split("\n")[:5])[:500]
        return {
            "index": self.origin.get(id(cell)),
            "output_index": None,  # set when the notebook is final
            "execution_count": cell.get("execution_count"),
            "source_excerpt": excerpt,
            "ename": ename,
            "evalue": evalue,
            "traceback": [strip_ansi(line) for line in tb_lines],
        }

    # -- execution -----------------------------------------------------------

    async def pipeline(self):
        """Everything that a signal may interrupt: load, checks, kernel, cells."""
        from jupyter_client.kernelspec import KernelSpecManager

        self.load()
        self.check_canceled()
        params = self.load_parameters()

        specs = KernelSpecManager().find_kernel_specs()
        self.result["available_kernels"] = sorted(specs)
        kernel_name, language, spec_dir = self.resolve_kernel(specs)

        if params and find_translator(kernel_name, language) is None:
            raise RunFailure(
                KIND_NO_TRANSLATOR,
                EXIT_SETUP,
                "no parameter translator for kernel '%s' (language '%s'); the bundled runner "
                "translates parameters for Python kernels only (papermill translates more)"
                % (kernel_name, language or ""),
            )
        if params:
            self.parameterize(params, kernel_name, language)
        self.prepare_metadata(params)
        say("Input Notebook:  %s" % self.args.input)
        say("Output Notebook: %s" % shown_path(self.args.output))
        try:
            self.save()
        except OSError as e:
            raise RunFailure(
                KIND_INTERNAL, EXIT_INTERNAL, "cannot write output notebook %s: %s" % (self.args.output, e)
            )

        if not spec_dir:
            raise RunFailure(
                KIND_NO_SUCH_KERNEL,
                EXIT_SETUP,
                "no such kernel '%s'; available kernels: %s"
                % (kernel_name, ", ".join(sorted(specs)) or "(none)"),
            )
        self.check_canceled()
        await self.start_kernel(kernel_name)
        self.check_canceled()
        await self.execute_cells()

    async def start_kernel(self, kernel_name):
        cwd = self.args.cwd or os.path.dirname(os.path.abspath(self.args.input))
        if not os.path.isdir(cwd):
            raise RunFailure(
                KIND_KERNEL_START_FAILED,
                EXIT_KERNEL_START,
                "working directory %s is not a directory" % cwd,
            )
        limit = self.args.execution_timeout
        self.client = make_client(
            self,
            self.nb,
            kernel_name=kernel_name,
            # nbclient's traits are whole seconds; timeout_func keeps a fractional limit exact.
            timeout=None if limit is None else int(math.ceil(limit)),
            timeout_func=None if limit is None else (lambda cell: limit),
            startup_timeout=int(math.ceil(self.args.start_timeout)),
            resources={"metadata": {"path": cwd}},
        )
        client = self.client
        # A kernel that fails while starting is killed at once, not after a grace period.
        client.shutdown_kernel = "immediate"
        env = os.environ.copy()
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silence debugpy in the kernel
        say("Executing notebook with kernel: %s (cwd %s)" % (kernel_name, cwd))
        # The steps of nbclient's async_setup_kernel, without its SIGINT/SIGTERM
        # handlers (they would replace ours and only schedule a cleanup, leaving
        # the cell loop running) and without its atexit hook: main_async owns
        # signals and shuts the kernel down on every path.
        try:
            client.km = client.create_kernel_manager()
            # Unix sockets in a private folder, not TCP ports: jupyter_client
            # picks "free" ports by binding and closing them, so kernels that
            # start together can be given the same port, and one never answers.
            self.ipc_dir = tempfile.mkdtemp(prefix="millrace-kernel-")
            client.km.transport, client.km.ip = "ipc", os.path.join(self.ipc_dir, "k")
            await client.async_start_new_kernel(cwd=cwd, env=env)
            self.remember_kernel_group()
            await client.async_start_new_kernel_client()
            msg_id = await _ensure_async(client.kc.kernel_info())
            reply = await client.async_wait_for_reply(msg_id)
            if reply is not None and "language_info" in reply.get("content", {}):
                self.nb.metadata["language_info"] = reply["content"]["language_info"]
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if self.signal is not None:
                raise
            raise RunFailure(
                KIND_KERNEL_START_FAILED,
                EXIT_KERNEL_START,
                "kernel '%s' failed to start: %s: %s" % (kernel_name, type(e).__name__, e),
            )
        client.shutdown_kernel = "graceful"

    def remember_kernel_group(self):
        km = self.client.km if self.client else None
        prov = getattr(km, "provisioner", None)
        self.kernel_pgid = getattr(prov, "pgid", None)

    async def execute_cells(self):
        from nbclient.exceptions import CellExecutionError

        client = self.client
        for index, cell in enumerate(self.nb.cells):
            self.check_canceled()
            if cell.cell_type != "code":
                self.cell_start(cell)
                self.cell_end(cell)
                continue
            self.current_index = index
            self.cell_start(cell)
            self.save()
            try:
                await client.async_execute_cell(cell, index)
            except CellExecutionError as ex:
                if self.signal is not None:
                    raise Canceled()
                err = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
                if err is not None:
                    ename, evalue, tb = err.get("ename", ""), err.get("evalue", ""), err.get("traceback", [])
                else:
                    ename, evalue, tb = ex.ename, ex.evalue, (ex.traceback or "").split("\n")
                if ename == "SystemExit" and evalue in ("", "0"):
                    self.cell_end(cell)
                    self.current_index = None
                    self.save()
                    self.stopped_by_exit = True
                    say("SystemExit(%s) in cell %d: stopping, remaining cells not run" % (evalue, index))
                    return
                self.cell_end(cell, failed=True)
                self.current_index = None
                self.failed_cell = (cell, self.cell_error_info(cell, ename, evalue, tb))
                self.save()
                return
            self.cell_end(cell)
            self.current_index = None
            self.save()

    def insert_error_markers(self):
        """papermill's raise_for_execution_errors markers around the failing cell."""
        import nbformat

        cell, _ = self.failed_cell
        idx = next(i for i, c in enumerate(self.nb.cells) if c is cell)
        header = nbformat.v4.new_markdown_cell(ERROR_MESSAGE_TEMPLATE % str(cell.get("execution_count")))
        header.metadata["tags"] = [ERROR_MARKER_TAG]
        anchor = nbformat.v4.new_markdown_cell(ERROR_ANCHOR_MSG)
        anchor.metadata["tags"] = [ERROR_MARKER_TAG]
        self.nb.cells.insert(idx, anchor)
        self.nb.cells.insert(0, header)

    def fail_running_cell(self, ename, evalue):
        """Mark the cell that was running as failed and describe it in the result."""
        if self.current_index is None or self.nb is None:
            return
        cell = self.nb.cells[self.current_index]
        self.cell_end(cell, failed=True)
        self.result["cell"] = self.cell_error_info(cell, ename, evalue, [])
        self.result["cell"]["output_index"] = self.current_index
        self.current_index = None

    def finish_notebook(self):
        if self.nb is None or "papermill" not in self.nb.metadata:
            return
        pm = self.nb.metadata["papermill"]
        end = utcnow()
        pm["end_time"] = end.isoformat()
        if pm.get("start_time"):
            start = datetime.datetime.fromisoformat(pm["start_time"])
            pm["duration"] = (end - start).total_seconds()
        if pm.get("exception") is None:
            pm["exception"] = self.result["status"] != "succeeded"

    def write_result(self):
        if self.args.result_file:
            write_atomic(
                self.args.result_file, json.dumps(self.result, indent=2, ensure_ascii=False) + "\n"
            )

    async def shutdown_kernel(self, now):
        client = self.client
        if client is None or client.km is None:
            return
        client.shutdown_kernel = "immediate" if now else "graceful"
        try:
            await client._async_cleanup_kernel()
        except Exception as e:
            say("kernel shutdown: %s: %s" % (type(e).__name__, e))
            if self.kernel_pgid:
                try:
                    os.killpg(self.kernel_pgid, signal.SIGKILL)
                except OSError:
                    pass
        if self.ipc_dir:
            shutil.rmtree(self.ipc_dir, ignore_errors=True)

    def classify(self, exc):
        """Turn how the pipeline ended into a result kind and exit code."""
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        res = self.result
        if self.signal is not None and exc is not None:
            name = signal.Signals(self.signal).name
            running = self.current_index
            where = self._input_index_text(running)
            self.fail_running_cell("Canceled", "canceled by %s" % name)
            res["kind"] = KIND_CANCELED
            res["message"] = "canceled by %s" % name + (
                " while cell %s was running" % where if running is not None else ""
            )
            return EXIT_SIGNAL.get(self.signal, EXIT_SIGTERM), True
        if exc is None:
            if self.failed_cell is not None:
                _, info = self.failed_cell
                res["kind"] = KIND_CELL_ERROR
                res["cell"] = info
                res["message"] = "cell %s raised %s" % (
                    info["index"] if info["index"] is not None else "(injected parameters)",
                    info["ename"],
                ) + (": " + info["evalue"] if info["evalue"] else "")
                return EXIT_CELL_FAILED, False
            res["status"] = "succeeded"
            res["kind"] = KIND_OK
            res["message"] = (
                "stopped early by SystemExit; remaining cells not run" if self.stopped_by_exit else "completed"
            )
            return EXIT_OK, False
        if isinstance(exc, RunFailure):
            res["kind"] = exc.kind
            res["message"] = exc.message
            return exc.code, True
        if isinstance(exc, CellTimeoutError):
            running = self.current_index
            self.fail_running_cell("CellTimeoutError", str(exc).strip())
            res["kind"] = KIND_CELL_TIMEOUT
            res["message"] = "cell %s timed out after %ss" % (
                self._input_index_text(running),
                _fmt_seconds(self.args.execution_timeout),
            )
            return EXIT_CELL_FAILED, True
        if isinstance(exc, DeadKernelError):
            running = self.current_index
            self.fail_running_cell("DeadKernelError", "Kernel died")
            res["kind"] = KIND_KERNEL_DIED
            res["message"] = "the kernel died while cell %s was running" % self._input_index_text(running)
            return EXIT_KERNEL_DIED, True
        res["kind"] = KIND_INTERNAL
        res["message"] = "%s: %s" % (type(exc).__name__, exc)
        sys.stderr.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        sys.stderr.flush()
        return EXIT_INTERNAL, True

    def _input_index_text(self, out_index):
        if out_index is None or self.nb is None:
            return "?"
        idx = self.origin.get(id(self.nb.cells[out_index]))
        return "(injected parameters)" if idx is None else str(idx)


def _fmt_seconds(v):
    return "?" if v is None else "%g" % v


async def _ensure_async(obj):
    if asyncio.iscoroutine(obj) or isinstance(obj, asyncio.Future):
        return await obj
    return obj


def make_client(run, nb, **kw):
    """Build an nbclient NotebookClient that echoes every output as it arrives."""
    from nbclient import NotebookClient

    class RunnerClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None:
                echo_output(out)
                run.autosave()
            return out

    return RunnerClient(nb, **kw)


async def main_async(args):
    run = Run(args)
    loop = asyncio.get_running_loop()
    for signum in handled_signals():
        loop.add_signal_handler(signum, run.on_signal, signum)

    run.exec_task = asyncio.create_task(run.pipeline())
    if EARLY_SIGNALS:
        run.on_signal(EARLY_SIGNALS[0])
    exc = None
    try:
        await run.exec_task
    except asyncio.CancelledError as e:
        exc = e
    except Exception as e:  # classified below
        exc = e

    # Tasks nbclient leaves behind after an interrupted cell (output and liveness
    # pollers) would otherwise run against a kernel that is being shut down.
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for t in leftovers:
        t.cancel()
    if leftovers:
        await asyncio.gather(*leftovers, return_exceptions=True)

    code, kill_now = EXIT_INTERNAL, True
    try:
        code, kill_now = run.classify(exc)
        if run.failed_cell is not None and run.result["kind"] == KIND_CELL_ERROR:
            run.insert_error_markers()
            cell = run.failed_cell[0]
            run.result["cell"]["output_index"] = next(
                i for i, c in enumerate(run.nb.cells) if c is cell
            )
        if run.output_saved:
            run.finish_notebook()
            run.save()
    except Exception as e:
        say("finishing the output notebook failed: %s: %s" % (type(e).__name__, e))
        traceback.print_exc()
        run.result["kind"] = KIND_INTERNAL
        run.result["status"] = "failed"
        run.result["message"] = "finishing the output notebook: %s: %s" % (type(e).__name__, e)
        code, kill_now = EXIT_INTERNAL, True
    finally:
        await run.shutdown_kernel(now=kill_now or run.signal is not None)

    if run.result["kind"] != KIND_OK:
        run.result["status"] = "failed"
        say("run failed (%s): %s" % (run.result["kind"], run.result["message"]))
    run.write_result()
    return code


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="millrace_runner.py",
        description="Run a Jupyter notebook the way papermill does (millrace's bundled runner).",
    )
    p.add_argument("input", help="input notebook path")
    p.add_argument("output", help="output notebook path")
    p.add_argument(
        "-f",
        "--parameters_file",
        "--parameters-file",
        dest="parameters_file",
        action="append",
        help="JSON (or YAML-compatible JSON) object of parameters; may repeat",
    )
    p.add_argument("-k", "--kernel", help="kernel name (overrides the notebook's kernelspec)")
    p.add_argument("--cwd", help="kernel working directory (default: the input notebook's folder)")
    p.add_argument(
        "--execution-timeout", type=float, default=None, help="per-cell time limit in seconds"
    )
    p.add_argument(
        "--start-timeout", "--start_timeout", type=float, default=60.0,
        help="kernel start-up time limit in seconds (default 60)",
    )
    p.add_argument("--result-file", help="write a JSON summary of the run here")
    # Accepted for papermill command-line compatibility; they change nothing here.
    for flag in ("--log-output", "--no-log-output", "--progress-bar", "--no-progress-bar",
                 "--request-save-on-cell-execute", "--no-request-save-on-cell-execute"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.execution_timeout is not None and args.execution_timeout <= 0:
        args.execution_timeout = None
    return args


EARLY_SIGNALS = []


def _record_early_signal(signum, frame):
    EARLY_SIGNALS.append(signum)


def handled_signals():
    """SIGTERM always; SIGINT unless the parent asked for it to be ignored."""
    sigs = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        sigs.append(signal.SIGINT)
    return sigs


def main(argv=None):
    # Until the event loop takes over, remember a cancel instead of dying without a result.
    for signum in handled_signals():
        signal.signal(signum, _record_early_signal)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8", errors="replace", line_buffering=False)
        except Exception:
            pass
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # debugpy warns about frozen modules when it is imported: in the kernel, and in
    # this process too (jupyter_client's kernelspec lookup imports ipykernel's debugger).
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
        import jupyter_client  # noqa: F401
    except ImportError as e:
        say("cannot import the Jupyter libraries this runner needs (Debian: python3-nbclient "
            "python3-ipykernel): %s" % e)
        if args.result_file:
            try:
                write_atomic(args.result_file, json.dumps({
                    "status": "failed", "kind": KIND_INTERNAL, "message": "missing dependency: %s" % e,
                    "kernel_name": "", "kernel_defaulted": False, "language": "",
                    "cells_total": 0, "cells_executed": 0, "warnings": [],
                    "available_kernels": [], "cell": None,
                }, indent=2) + "\n")
            except Exception:
                pass
        return EXIT_INTERNAL
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
