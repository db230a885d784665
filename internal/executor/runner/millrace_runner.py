#!/usr/bin/python3
"""millrace's bundled papermill-compatible notebook runner.

    millrace_runner.py INPUT OUTPUT [-f PARAMS.json] [-k KERNEL] [--cwd DIR]
        [--execution-timeout SECONDS] [--start-timeout SECONDS]
        [--result-file FILE]
        [--checkpoint-dir DIR [--checkpoint auto|every_cell|off]
         [--checkpoint-max-bytes N] [--checkpoint-keep N] --checkpoint-bootstrap FILE]
        [--resume-checkpoint DIR/cell-K.ckpt --resume-sha256 HEX --resume-cell K
         [--allow-partial] [--resume-required]]

It follows papermill's observable contract so that either can be the executor:
the `injected-parameters` cell after the `parameters` cell, metadata.papermill
on the notebook and on every cell, the output notebook saved at every code-cell
start and end, the error marker cells, exit 1 on a cell error, 138 on a dead
kernel, and SystemExit with no value (or 0) counted as success.

Cell output is echoed live: stdout streams and text/plain results to stdout;
stderr streams and tracebacks (ANSI stripped) to stderr. The runner's own
messages go to stderr, prefixed with "[millrace-runner]".

Exit codes: 0 ok, 1 cell error or cell timeout, 3 the notebook cannot run as
asked (bad notebook, no such kernel, no parameter translator, a required
resume that failed), 4 the kernel did
not start, 5 internal error, 138 the kernel died, 130/143 canceled by
SIGINT/SIGTERM. --result-file receives a JSON summary on every path.

Checkpoints (--checkpoint-dir; none without it). Between cells the runner
calls millrace_checkpoint.py in the kernel (installed once by the code in
--checkpoint-bootstrap, a silent execute) through user expressions. After
code cell K (its index in the input file; never the injected parameters
cell, a failed cell or a SystemExit) it may save DIR/cell-K.ckpt (with the
library's sidecar cell-K.ckpt.json) and DIR/cell-K.ipynb, the output notebook
as it was then. every_cell saves after every code cell; auto after a cell
once CHECKPOINT_MIN_SECONDS of cells have run and, later, once the time since
the last save is at least max(CHECKPOINT_MIN_SECONDS, cost / CHECKPOINT_SHARE),
cost being the last save's pause (inline: all of it) plus, for a forked save,
its total time divided by the cores (the child competes for one). A forked
save writes while the next cells run; it is polled before each cell, and
waited for at the end of a run that was not canceled and whose kernel lived.
Each complete checkpoint is recorded in DIR/latest.json (0600) and in the
result's "checkpoints" (the --checkpoint-keep latest, oldest first; older
files are deleted). A save never fails the run: a failure is a warning, and
later saves go on. A checkpoint over --checkpoint-max-bytes is stopped as
soon as it passes the cap and not kept; the run gets one warning, and later
cells are tried again (the namespace may shrink), spaced by the auto rule so
that thrown-away writes cost at most CHECKPOINT_SHARE of the run.
--checkpoint-min-interval SECONDS (hidden, for tests only) replaces
CHECKPOINT_MIN_SECONDS, so that a test of auto need not run for 10 s.

Resume (--resume-checkpoint). Before any cell runs: the snapshot
cell-K.ipynb beside the checkpoint must hold the same code cells 0..K as the
input (and the same injected parameters when they come before cell K+1); a
checkpoint whose sidecar says partial needs --allow-partial. Then the kernel
restores it (the library checks the sha256 as it reads). The output notebook
takes the outputs of the cells up to K from the snapshot (marked
metadata.millrace.restored), metadata.millrace.resumed records where from,
and execution starts after cell K; the new kernel numbers executions from 1
again. DIR/resume.json says whether it resumed, and why not. A failed resume
fails the run with resume_failed (exit 3) under --resume-required, and
otherwise runs from the first cell with a warning; a restore that failed
after it began unpickling (which runs code) is followed by a fresh kernel.

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
KIND_RESUME_FAILED = "resume_failed"

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


def write_atomic(path, text, mode=None):
    """Write text to path through a temporary file in the same folder, with
    mode (default: 0666 less the umask)."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, (0o666 & ~UMASK) if mode is None else mode)
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
# Checkpoints and resume: the runner's side of millrace_checkpoint.py, which
# runs in the kernel and is called between cells through user expressions.

# auto policy: the first checkpoint once cells have run this long, and never
# two closer than this. A resume costs a kernel start (about 2.5 s here) plus
# the restore's imports (about 2.6 s for numpy, measured): re-running less
# than about 10 s of cells costs no more than resuming, so an earlier
# checkpoint buys nothing, and a notebook of quick cells takes none at all.
CHECKPOINT_MIN_SECONDS = 10.0
# auto policy: a save's cost stays at most this share of the run time.
CHECKPOINT_SHARE = 0.03
# How long the end of a run waits for a forked save still writing: the
# library kills its child at its own deadline (DEFAULT_DEADLINE, 600 s), so
# this is that plus a margin for the reply.
CHECKPOINT_WAIT = 600.0
CHECKPOINT_CALL_MARGIN = 60.0
CHECKPOINT_WATCH_EVERY = 0.5  # seconds between looks at a forked save's sidecar while a cell runs
# Names a checkpoint record lists (workflows.MaxSkippedNames).
MAX_SKIPPED_NAMES = 20
CHECKPOINT_LIB = "millrace_checkpoint"


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return ("%d %s" % (v, unit)) if v == int(v) else ("%.1f %s" % (v, unit))
    return "%d bytes" % n


def rfc3339_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_json_private(path, value):
    """latest.json, resume.json, snapshots: 0600, like the checkpoints."""
    write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n", mode=0o600)


class KernelCallError(Exception):
    """A silent execute or user expression that raised in the kernel."""

    def __init__(self, ename, evalue):
        super().__init__("%s: %s" % (ename, evalue))
        self.ename = ename or ""
        self.evalue = evalue or ""


class ResumeRefused(Exception):
    """The checkpoint cannot be resumed from; the message says why.
    fresh_kernel: the failed attempt may have changed the kernel's process."""

    def __init__(self, reason, fresh_kernel=False):
        super().__init__(reason)
        self.reason = reason
        self.fresh_kernel = fresh_kernel


def lib_call(fn, *args, **kw):
    """The user expression that calls fn of the checkpoint library. JSON
    string and number literals are Python literals too."""
    parts = [json.dumps(a) for a in args] + ["%s=%s" % (k, json.dumps(v)) for k, v in kw.items()]
    return '__import__("%s").%s(%s)' % (CHECKPOINT_LIB, fn, ", ".join(parts))


class Checkpoints:
    """When and where to checkpoint a run, and the records of the complete
    checkpoints this run kept (latest.json, the result's "checkpoints")."""

    def __init__(self, run, args):
        self.run = run
        self.dir = os.path.abspath(args.checkpoint_dir) if args.checkpoint_dir else None
        self.policy = (args.checkpoint or "auto") if self.dir else "off"
        self.max_bytes = args.checkpoint_max_bytes or 0
        self.keep = args.checkpoint_keep
        self.min_interval = CHECKPOINT_MIN_SECONDS if args.checkpoint_min_interval is None else args.checkpoint_min_interval
        self.bootstrap = args.checkpoint_bootstrap
        self.off_reason = None  # why checkpoints were turned off during the run
        self.kept = []  # records of complete checkpoints, oldest first
        self.inflight = None  # the forked save still writing
        self.exec_started = None
        self.last_end = None  # when the last save (attempt) gave the kernel back
        self.last_cost = 0.0
        self.over_cap = False  # the last attempt passed the cap
        self.over_cap_warned = False
        self.failures_warned = set()
        self.cpus = os.cpu_count() or 1

    @property
    def active(self):
        return self.policy != "off" and self.off_reason is None

    def turn_off(self, reason):
        if self.off_reason is None:
            self.off_reason = reason
            self.run.warn("checkpoints are off for this run: " + reason)

    def check_folder(self):
        if self.policy != "off" and not os.path.isdir(self.dir):
            self.turn_off("the checkpoint folder %s does not exist" % self.dir)

    async def install(self):
        """Send the library to the kernel; return why it could not be, or None."""
        info = self.run.nb.metadata.get("language_info") or {}
        language = (info.get("name") or self.run.result.get("language") or "").lower()
        if language != "python":
            return "checkpoints need a Python (IPython) kernel; this one's language is %r" % language
        if not self.bootstrap:
            return "the runner was given no --checkpoint-bootstrap file"
        try:
            with open(self.bootstrap, encoding="utf-8") as f:
                code = f.read()
            await self.run.kernel_exec(code, timeout=120)
        except (OSError, KernelCallError) as e:
            return "installing the checkpoint library in the kernel failed: %s" % e
        return None

    def path(self, cell):
        return os.path.join(self.dir, "cell-%d.ckpt" % cell)

    def snapshot_path(self, cell):
        return os.path.join(self.dir, "cell-%d.ipynb" % cell)

    def due(self, now):
        if self.inflight is not None:
            # auto does not queue behind a save still writing; every_cell
            # waits for it (save).
            return self.policy == "every_cell" and not self.over_cap
        if self.policy == "every_cell" and not self.over_cap:
            return True
        if self.last_end is None:
            return now - self.exec_started >= self.min_interval
        # After a save over the cap every_cell spaces its tries as auto
        # does, so that writes that end up thrown away cost at most the
        # same share of the run.
        return now - self.last_end >= max(self.min_interval, self.last_cost / CHECKPOINT_SHARE)

    async def after_cell(self, cell):
        """Called once code cell `cell` (input index) succeeded."""
        if not self.active:
            return
        await self.poll()
        if self.due(time.monotonic()):
            await self.save(cell)

    async def save(self, cell):
        if self.inflight is not None:
            await self.wait()
        path = self.path(cell)
        t0 = time.monotonic()
        try:
            self.run.write_snapshot(self.snapshot_path(cell), cell)
            snap_seconds = time.monotonic() - t0
            s = await self.run.kernel_call(
                lib_call("save", path, cell, if_busy="wait" if self.policy == "every_cell" else "skip",
                         max_bytes=self.max_bytes),
                timeout=CHECKPOINT_WAIT + CHECKPOINT_CALL_MARGIN,
            )
        except (KernelCallError, OSError) as e:
            self.last_end = time.monotonic()
            self.last_cost = self.last_end - t0
            self.discard(cell)
            self.failed(cell, getattr(e, "ename", type(e).__name__), getattr(e, "evalue", str(e)))
            return
        self.last_end = time.monotonic()
        state = s.get("state")
        if state == "writing":
            # The cost the run saw is the whole call as the runner waited for
            # it (snapshot, the kernel's fork, the reply's trip back), not
            # the kernel's own pause alone, which is several times smaller.
            self.inflight = {"cell": cell, "path": path, "call_seconds": self.last_end - t0, "pid": s.get("pid"),
                             "pause_seconds": s.get("pause_seconds") or 0, "started": t0}
            self.last_cost = self.inflight["call_seconds"]
        elif state == "complete":
            self.last_cost = self.last_end - t0
            self.complete(cell, s)
        else:  # "busy": a forked save still writes (auto only); try after a later cell
            self.discard(cell)

    async def finish(self):
        """The end of a run that did not stop by a signal or a dead kernel:
        the forked save still writing is waited for, so that the last
        checkpoint is usable by a rerun that fixes the failing cell."""
        if self.inflight is None:
            return
        try:
            await self.wait()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            say("waiting for the last checkpoint: %s: %s" % (type(e).__name__, e))

    async def poll(self):
        if self.inflight is None:
            return
        try:
            s = await self.run.kernel_call(lib_call("poll", self.inflight["path"]), timeout=CHECKPOINT_CALL_MARGIN)
        except KernelCallError as e:
            s = {"state": "failed", "error": str(e)}
        self.settle(s)

    async def wait(self, timeout=CHECKPOINT_WAIT):
        """Wait for the forked save in flight, if any, to end."""
        if self.inflight is None:
            return
        try:
            s = await self.run.kernel_call(lib_call("wait", self.inflight["path"], timeout),
                                           timeout=timeout + CHECKPOINT_CALL_MARGIN)
        except KernelCallError as e:
            s = {"state": "failed", "error": str(e)}
        self.settle(s)
        if self.inflight is not None:  # still writing past the wait: give it up
            cell = self.inflight["cell"]
            self.inflight = None
            self.discard(cell)
            self.failed(cell, "Timeout", "still writing after %gs" % timeout)

    async def watch(self):
        """While cells run, notice a forked save that completed, from the
        sidecar its child writes once the file is whole: the kernel is busy
        with the cell and cannot be asked, and a long cell would otherwise
        keep the checkpoint out of latest.json, and out of Temporal, until
        it ends."""
        while True:
            await asyncio.sleep(CHECKPOINT_WATCH_EVERY)
            job = self.inflight
            if job is None:
                continue
            try:
                with open(job["path"] + ".json", encoding="utf-8") as f:
                    s = json.load(f)
            except (OSError, ValueError):
                continue
            if s.get("state") in ("complete", "failed") and s.get("path") == job["path"] and self.inflight is job:
                self.settle(s)

    def settle(self, s):
        """Take the end of the forked save in flight from a poll, a wait or
        its sidecar (watch), whichever comes first."""
        state = s.get("state")
        if state == "writing" or self.inflight is None:
            return
        job, self.inflight = self.inflight, None
        cell = job["cell"]
        # The child competes with the kernel for a core for its whole run,
        # a failed one (over the cap, say) too.
        total = s.get("total_seconds") if state == "complete" else None
        if total is None:
            total = time.monotonic() - job["started"]
        self.last_cost = job["call_seconds"] + total / self.cpus
        if state == "complete":
            self.complete(cell, s)
            return
        self.discard(cell)
        self.failed(cell, s.get("error_type") or "", s.get("error") or "state %r" % state)

    def complete(self, cell, s):
        skipped = sorted(s.get("skipped") or {})
        rec = {
            "cell": cell,
            "path": s.get("path") or self.path(cell),
            "sha256": s.get("sha256"),
            "size_bytes": s.get("size_bytes"),
            "saved_at": rfc3339_now(),
            "partial": bool(s.get("partial")),
            "skipped": skipped[:MAX_SKIPPED_NAMES],
            "skipped_count": len(skipped),
            "mode": s.get("mode"),
            "pause_seconds": s.get("pause_seconds"),
            "total_seconds": s.get("total_seconds"),
        }
        self.over_cap = False
        self.kept.append(rec)
        while len(self.kept) > self.keep:
            old = self.kept.pop(0)
            self.discard(old["cell"])
        self.run.result["checkpoints"] = list(self.kept)
        try:
            write_json_private(os.path.join(self.dir, "latest.json"), rec)
        except OSError as e:
            self.failed(cell, "OSError", "writing latest.json: %s" % e)
        say("checkpoint after cell %d: %s, %s (%s, paused the kernel %.3fs)" % (
            cell, fmt_bytes(rec["size_bytes"] or 0), "partial" if rec["partial"] else "complete",
            rec["mode"], rec["pause_seconds"] or 0))

    def failed(self, cell, ename, evalue):
        if ename == "CheckpointTooBig":
            self.over_cap = True
            if not self.over_cap_warned:
                self.over_cap_warned = True
                self.run.warn(
                    "checkpoints stopped after cell %d: the namespace needs more than %s, the cap "
                    "(checkpoint_max_size); raise the cap or del large variables (later cells are tried "
                    "again, spaced so that the tries cost at most %d%% of the run)"
                    % (cell, fmt_bytes(self.max_bytes), round(CHECKPOINT_SHARE * 100)))
            return
        what = ("%s: %s" % (ename, evalue)) if ename else evalue
        msg = "checkpoint after cell %d failed: %s" % (cell, what)
        if what in self.failures_warned:
            say(msg)  # the same reason again: once in the warnings is enough
        else:
            self.failures_warned.add(what)
            self.run.warn(msg)

    def discard(self, cell):
        """Remove a checkpoint's files (the file, its sidecar, its snapshot)."""
        path = self.path(cell)
        for p in (path, path + ".json", self.snapshot_path(cell)):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError as e:
                say("cannot remove %s: %s" % (p, e))

    def abandon(self, kernel_pgid):
        """After the kernel is gone: stop a forked save still writing (its
        process is in the kernel's group) and remove what it left."""
        job, self.inflight = self.inflight, None
        if job is None:
            return
        if kernel_pgid:
            try:
                os.killpg(kernel_pgid, signal.SIGKILL)
            except OSError:
                pass
        # The child must be gone before its temporary file is removed, or a
        # rename it still makes would leave a stray sidecar.
        pid = job.get("pid")
        deadline = time.monotonic() + 5
        while pid and time.monotonic() < deadline and _process_alive(pid):
            time.sleep(0.02)
        self.discard(job["cell"])
        base = os.path.basename(self.path(job["cell"]))
        try:
            names = os.listdir(self.dir)
        except OSError:
            names = []
        for name in names:
            if name.startswith("." + base) and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(self.dir, name))
                except OSError:
                    pass


def _process_alive(pid):
    """Whether pid is a live process (a zombie is not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


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
        self.kernel_phase = None  # what a silent call to the kernel is doing
        self.resume_from = 0  # output index of the first cell to execute
        self.checkpoints = Checkpoints(self, args)
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
            "cells_restored": 0,
            "resumed_from_cell": None,
            "checkpoints": [],
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
        try:
            self.checkpoints.abandon(self.kernel_pgid)
        except Exception:
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

    # -- kernel calls and checkpoints --------------------------------------

    async def kernel_exec(self, code, user_expressions=None, timeout=60.0, what="running a checkpoint call"):
        """Run code as a silent execute_request (no history, no output, no
        execution count) and return the reply's content; raise
        KernelCallError when it raised. nbclient skips the busy/idle messages
        it causes: they carry another parent."""
        from queue import Empty

        from nbclient.exceptions import DeadKernelError

        kc = self.client.kc
        self.kernel_phase = what
        try:
            msg_id = await _ensure_async(kc.execute(
                code, silent=True, store_history=False, user_expressions=user_expressions or {}, allow_stdin=False
            ))
            deadline = time.monotonic() + timeout
            while True:
                try:
                    msg = await _ensure_async(kc.shell_channel.get_msg(timeout=1.0))
                except Empty:
                    if not await _ensure_async(kc.is_alive()):
                        raise DeadKernelError("Kernel died")
                    if time.monotonic() > deadline:
                        raise KernelCallError("Timeout", "the kernel did not answer in %gs" % timeout)
                    continue
                if msg["parent_header"].get("msg_id") == msg_id:
                    break
        finally:
            self.kernel_phase = None
        content = msg["content"]
        if content.get("status") != "ok":
            raise KernelCallError(content.get("ename"), content.get("evalue"))
        return content

    async def kernel_call(self, expr, timeout=60.0, what="running a checkpoint call"):
        """Evaluate expr (a call of the checkpoint library, whose results
        print as JSON) as a user expression; return its value."""
        content = await self.kernel_exec("", {"r": expr}, timeout=timeout, what=what)
        r = (content.get("user_expressions") or {}).get("r") or {}
        if r.get("status") != "ok":
            raise KernelCallError(r.get("ename"), r.get("evalue"))
        text = (r.get("data") or {}).get("text/plain", "")
        try:
            return json.loads(text)
        except ValueError:
            raise KernelCallError("ValueError", "the checkpoint library answered %r" % text[:200])

    def write_snapshot(self, path, cell):
        """The output notebook as it is now (cell `cell` just ended), with
        each cell's input index, for a resume to restore outputs from."""
        import nbformat

        md = self.nb.metadata
        had, prev = "millrace" in md, md.get("millrace")
        md["millrace"] = dict(prev or {}, checkpoint={
            "cell": cell, "origin": [self.origin.get(id(c)) for c in self.nb.cells],
        })
        try:
            text = nbformat.v4.writes(self.nb) + "\n"
        finally:
            if had:
                md["millrace"] = prev
            else:
                del md["millrace"]
        write_atomic(path, text, mode=0o600)

    # -- resume ----------------------------------------------------------------

    def boundary(self, cells, origin_of, k):
        """The index in cells of the first cell of the input after cell k:
        the cells before it are the ones the checkpoint after k covers (the
        injected parameters cell among them when it comes before)."""
        for i, c in enumerate(cells):
            o = origin_of(i, c)
            if o is not None and o > k:
                return i
        return len(cells)

    def resume_plan(self):
        """Check what needs no kernel: the snapshot is the checkpoint's, the
        cells up to k (and the parameters) are those it ran, and the
        sidecar does not say partial. Returns (snapshot, its cells by input
        index)."""
        import nbformat

        a = self.args
        k = a.resume_cell
        path = os.path.abspath(a.resume_checkpoint)
        snap_path = os.path.join(os.path.dirname(path), "cell-%d.ipynb" % k)
        try:
            with open(snap_path, encoding="utf-8") as f:
                snap = nbformat.reads(f.read(), as_version=4)
        except Exception as e:
            raise ResumeRefused("its notebook snapshot %s cannot be read (%s: %s)" % (snap_path, type(e).__name__, e))
        meta = (snap.metadata.get("millrace") or {}).get("checkpoint") or {}
        origin = meta.get("origin")
        if meta.get("cell") != k or not isinstance(origin, list) or len(origin) != len(snap.cells):
            raise ResumeRefused("%s is not the notebook snapshot of a checkpoint after cell %d" % (snap_path, k))
        snap_by = {}
        for c, o in zip(snap.cells, origin):
            snap_by[o] = c
        cur_by = {self.origin.get(id(c)): c for c in self.nb.cells}
        for i in range(k + 1):
            s, c = snap_by.get(i), cur_by.get(i)
            code = (s is not None and s.cell_type == "code") or (c is not None and c.cell_type == "code")
            if code and (s is None or c is None or s.cell_type != c.cell_type or _source(s) != _source(c)):
                raise ResumeRefused(
                    "cell %d changed since the checkpoint was taken; rerun from cell %d or earlier, "
                    "or without from_cell" % (i, i))
        # The parameters: when the injected cell is among the restored cells,
        # the namespace holds the values it set then.
        cur_b = self.boundary(self.nb.cells, lambda i, c: self.origin.get(id(c)), k)
        snap_b = self.boundary(snap.cells, lambda i, c: origin[i], k)
        cur_inj = next((c for c in self.nb.cells[:cur_b] if self.origin.get(id(c)) is None), None)
        snap_inj = next((c for i, c in enumerate(snap.cells[:snap_b]) if origin[i] is None), None)
        if (cur_inj is not None or snap_inj is not None) and (
                cur_inj is None or snap_inj is None or _source(cur_inj) != _source(snap_inj)):
            raise ResumeRefused(
                "the parameters differ from those of the run that took the checkpoint, which set them before "
                "cell %d; rerun with the same parameters, or without from_cell" % (k + 1))
        try:
            with open(path + ".json", encoding="utf-8") as f:
                side = json.load(f)
        except (OSError, ValueError):
            side = {}  # restore's own report of skipped names decides
        if isinstance(side, dict) and side.get("partial") and not a.allow_partial:
            raise ResumeRefused(self.partial_reason(k, side.get("skipped") or {}))
        return snap, snap_by

    @staticmethod
    def partial_reason(k, skipped):
        names = sorted(skipped)
        shown = ", ".join(names[:MAX_SKIPPED_NAMES]) + (
            " and %d more" % (len(names) - MAX_SKIPPED_NAMES) if len(names) > MAX_SKIPPED_NAMES else "")
        return ("the checkpoint after cell %d left out names %s (they could not be saved); "
                "pass allow_partial to resume anyway" % (k, shown))

    async def restore(self):
        """Load the checkpoint into the kernel (the library was installed)."""
        a = self.args
        k = a.resume_cell
        try:
            r = await self.kernel_call(
                lib_call("restore", os.path.abspath(a.resume_checkpoint), a.resume_sha256),
                timeout=CHECKPOINT_WAIT, what="restoring the checkpoint after cell %d" % k)
        except KernelCallError as e:
            # A refusal comes before anything is unpickled; any other
            # failure came after unpickling ran code in the kernel.
            raise ResumeRefused(e.evalue or str(e), fresh_kernel=e.ename != "CheckpointRefused")
        if r.get("cell") != k:
            raise ResumeRefused("the checkpoint holds the state after cell %s, not after cell %d" % (r.get("cell"), k),
                                fresh_kernel=True)
        if r.get("skipped_at_save") and not a.allow_partial:
            raise ResumeRefused(self.partial_reason(k, r["skipped_at_save"]), fresh_kernel=True)
        say("restored the checkpoint after cell %d in %.2fs: %d names" % (k, r.get("seconds") or 0, len(r.get("restored") or [])))

    def apply_snapshot(self, snap_by):
        """Take the outputs of the cells the checkpoint covers from its
        snapshot; execution starts after them."""
        a = self.args
        k = a.resume_cell
        b = self.boundary(self.nb.cells, lambda i, c: self.origin.get(id(c)), k)
        for cell in self.nb.cells[:b]:
            s = snap_by.get(self.origin.get(id(cell)))
            if s is None or s.cell_type != cell.cell_type:
                # A markdown cell the snapshot does not have: nothing to restore.
                self.cell_start(cell)
                self.cell_end(cell)
                continue
            if cell.cell_type == "code":
                cell.outputs = s.get("outputs", [])
                cell.execution_count = s.get("execution_count")
                self.result["cells_restored"] += 1
            if "papermill" in s.metadata:
                cell.metadata["papermill"] = s.metadata["papermill"]
            cell.metadata["millrace"] = {"restored": True}
        self.resume_from = b
        self.nb.metadata.setdefault("millrace", {})["resumed"] = {
            "cell": k, "first_cell": k + 1,
            "checkpoint": os.path.abspath(a.resume_checkpoint), "sha256": a.resume_sha256,
        }
        self.result["resumed_from_cell"] = k + 1
        self.save()

    def resume_outcome(self, resumed, reason=None):
        k = self.args.resume_cell
        if self.checkpoints.dir is None:
            return
        out = {"resumed": resumed, "cell": k, "first_cell": k + 1}
        if not resumed:
            out["reason"] = reason
        try:
            write_json_private(os.path.join(self.checkpoints.dir, "resume.json"), out)
        except OSError as e:
            self.warn("cannot write resume.json: %s" % e)

    def resume_refused(self, e):
        """A resume that cannot happen: the run fails (--resume-required) or
        starts from its first cell with a warning."""
        k = self.args.resume_cell
        self.resume_outcome(False, e.reason)
        if self.args.resume_required:
            raise RunFailure(KIND_RESUME_FAILED, EXIT_SETUP,
                             "cannot resume from the checkpoint after cell %d: %s" % (k, e.reason))
        self.warn("not resumed from the checkpoint after cell %d: %s; the run started from its first cell" % (k, e.reason))

    async def prepare_kernel(self, kernel_name, plan):
        """Install the checkpoint library and restore the checkpoint, as
        asked; on a refused restore that may have changed the kernel, start
        a fresh one."""
        ck = self.checkpoints
        installed = False
        if plan is not None:
            snap, snap_by = plan
            try:
                why = await ck.install()
                if why:
                    raise ResumeRefused(why)
                installed = True
                await self.restore()
            except ResumeRefused as e:
                self.resume_refused(e)
                if e.fresh_kernel:
                    say("starting a fresh kernel: the failed restore may have changed this one")
                    await self.shutdown_kernel(now=True)
                    await self.start_kernel(kernel_name)
                    installed = False
            else:
                self.apply_snapshot(snap_by)
                self.resume_outcome(True)
        if ck.active and not installed:
            why = await ck.install()
            if why:
                ck.turn_off(why)

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
        self.checkpoints.check_folder()
        plan = None
        if self.args.resume_checkpoint:
            try:
                plan = self.resume_plan()
            except ResumeRefused as e:
                self.resume_refused(e)
        self.check_canceled()
        await self.start_kernel(kernel_name)
        self.check_canceled()
        await self.prepare_kernel(kernel_name, plan)
        self.check_canceled()
        self.checkpoints.exec_started = time.monotonic()
        await self.execute_cells()
        await self.checkpoints.finish()

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
            # Forked from millrace's warm pool (millrace_zygote.py), the
            # runner lets the zygote give the kernel manager a provisioner
            # that starts this Python's ipykernel from a forked, warm
            # process; cold, the module does not exist.
            warm = sys.modules.get("millrace_zygote")
            if warm is not None:
                warm.provision(client.km)
            # Unix sockets in a private folder, not TCP ports: jupyter_client
            # picks "free" ports by binding and closing them, so kernels that
            # start together can be given the same port, and one never answers.
            self.ipc_dir = tempfile.mkdtemp(prefix="millrace-kernel-")
            client.km.transport, client.km.ip = "ipc", os.path.join(self.ipc_dir, "k")
            await client.async_start_new_kernel(cwd=cwd, env=env)
            self.remember_kernel_group()
            reply = await self.start_kernel_client(client, self.args.start_timeout)
            if "language_info" in reply.get("content", {}):
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

    async def start_kernel_client(self, client, timeout):
        """nbclient's async_start_new_kernel_client, with a faster wait for
        the kernel: returns the kernel_info reply once IOPub is connected.

        jupyter_client's wait_for_ready, after the reply, waits up to 0.2 s
        for an IOPub message (a SUB socket joins late: what the kernel
        publishes before the subscription reaches it is lost, so none may
        come, and it asks again), then for 0.2 s of IOPub silence: 0.2 to
        0.4 s of every run's start. Here a new kernel_info request (each
        makes the kernel publish its status) goes every 20 ms until a
        status arrives, and nothing waits for silence: the extra replies
        and statuses carry other parents, which nbclient's waits skip."""
        from queue import Empty

        try:
            from nbclient.util import run_hook  # nbclient 0.6 and later
        except ImportError:
            run_hook = None

        kc = client.kc = client.km.client()
        try:
            await _ensure_async(kc.start_channels())
            deadline = time.monotonic() + timeout
            first = await _ensure_async(kc.kernel_info())
            reply = None
            while reply is None:
                try:
                    msg = await _ensure_async(kc.shell_channel.get_msg(timeout=1.0))
                except Empty:
                    if not await _ensure_async(kc.is_alive()):
                        raise RuntimeError("Kernel died before replying to kernel_info")
                    if time.monotonic() > deadline:
                        raise RuntimeError("Kernel didn't respond in %g seconds" % timeout)
                    continue
                if msg["parent_header"].get("msg_id") == first and msg["msg_type"] == "kernel_info_reply":
                    reply = msg
            while True:
                try:
                    await _ensure_async(kc.iopub_channel.get_msg(timeout=0.02))
                    break
                except Empty:
                    if not await _ensure_async(kc.is_alive()):
                        raise RuntimeError("Kernel died before its IOPub channel connected")
                    if time.monotonic() > deadline:
                        raise RuntimeError("the kernel's IOPub channel did not connect in %g seconds" % timeout)
                    await _ensure_async(kc.kernel_info())
        except Exception:
            await client._async_cleanup_kernel()
            raise
        kc.allow_stdin = False
        if run_hook is not None:
            await run_hook(client.on_notebook_start, notebook=client.nb)
        return reply

    def remember_kernel_group(self):
        km = self.client.km if self.client else None
        prov = getattr(km, "provisioner", None)
        self.kernel_pgid = getattr(prov, "pgid", None)

    async def execute_cells(self):
        from nbclient.exceptions import CellExecutionError

        client = self.client
        for index, cell in enumerate(self.nb.cells):
            if index < self.resume_from:
                continue  # restored from the checkpoint
            self.check_canceled()
            await self.checkpoints.poll()
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
            k = self.origin.get(id(cell))
            if k is not None:  # never after the injected parameters
                await self.checkpoints.after_cell(k)

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
            if running is None and self.kernel_phase:
                res["message"] = "the kernel died while %s" % self.kernel_phase
            else:
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
    watcher = asyncio.create_task(run.checkpoints.watch())
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
        run.checkpoints.abandon(run.kernel_pgid)

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
    c = p.add_argument_group("checkpoints and resume (the bundled runner's own; papermill has none)")
    c.add_argument("--checkpoint-dir", help="save checkpoints in this folder (absent: no checkpoints)")
    c.add_argument("--checkpoint", choices=("auto", "every_cell", "off"), default="auto",
                   help="when to save (default auto, with --checkpoint-dir)")
    c.add_argument("--checkpoint-max-bytes", type=int, default=0, help="largest checkpoint to keep (0: no cap)")
    c.add_argument("--checkpoint-keep", type=int, default=3, help="complete checkpoints to keep (default 3)")
    c.add_argument("--checkpoint-bootstrap", help="file with the code that installs the checkpoint library in a kernel")
    # Tests only: the auto policy's minimum interval, CHECKPOINT_MIN_SECONDS.
    c.add_argument("--checkpoint-min-interval", type=float, default=None, help=argparse.SUPPRESS)
    c.add_argument("--resume-checkpoint", help="a cell-K.ckpt to restore before running the cells after K")
    c.add_argument("--resume-sha256", help="the sha256 the checkpoint must have")
    c.add_argument("--resume-cell", type=int, help="K: the input-notebook index of the checkpoint's last cell")
    c.add_argument("--allow-partial", action="store_true", help="resume from a checkpoint that left names out")
    c.add_argument("--resume-required", action="store_true",
                   help="a resume that fails fails the run (resume_failed) instead of running from the first cell")
    args = p.parse_args(argv)
    if args.execution_timeout is not None and args.execution_timeout <= 0:
        args.execution_timeout = None
    if args.checkpoint_keep < 1:
        p.error("--checkpoint-keep must be at least 1")
    if args.checkpoint_max_bytes < 0:
        p.error("--checkpoint-max-bytes must be 0 (no cap) or more")
    resume = (args.resume_checkpoint, args.resume_sha256, args.resume_cell)
    if any(v is not None for v in resume) and not all(v is not None for v in resume):
        p.error("--resume-checkpoint, --resume-sha256 and --resume-cell go together")
    if args.resume_cell is not None and args.resume_cell < 0:
        p.error("--resume-cell must be a cell index (0 or more)")
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
