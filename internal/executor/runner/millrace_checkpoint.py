"""millrace's kernel-side checkpoints: the user namespace, saved between cells.

This module runs INSIDE an IPython kernel. The runner installs it once with a
silent execute_request (see Bootstrap in checkpoint.go: it registers the module
as sys.modules["millrace_checkpoint"] and leaves no name in the user's
namespace), then calls its functions between cells through execute_request
user_expressions, for example

    __import__("millrace_checkpoint").save("/run/ckpt/cell-3.ckpt", 3)

Every function returns a Summary: a dict whose repr is its JSON, so the
text/plain of a user expression is the JSON itself. A failure raises
CheckpointError with an actionable message; it is never raised from inside an
except block, because IPython (8.5) cannot format a chained exception of a user
expression and then sends no execute_reply at all.

save(path, cell, mode="auto", if_busy="skip", deadline=DEFAULT_DEADLINE, probe="auto", max_bytes=0)
    pickles the user namespace with dill: variables, and functions, classes
    and lambdas defined in the notebook (by value); imported modules are
    recorded by name and re-imported on restore; the states of random, and of
    numpy and torch when the notebook imported them. IPython's own names and
    the names the kernel put there before the first cell are left out. A name
    that cannot be pickled (a socket, a generator, a lock, an open file) is
    listed in "skipped" with its reason, and the checkpoint is "partial".
    The file is written atomically (temporary file in the same folder, fsync,
    rename, fsync of the folder) and a sidecar PATH.json holds the summary
    once the file is complete: the runner treats checkpoint k as taken only
    when PATH.json says "state": "complete".

    mode="fork" is Redis' BGSAVE: the kernel forks; the child pickles and
    writes while the kernel goes on with the next cell, so the pause is the
    length of fork(), not of the pickling. mode="inline" pickles in the
    kernel. "auto" is fork where fork is safe (see fork_unsafe_reason) and
    inline elsewhere; the summary says which ran and why.

    max_bytes caps the file: the write stops as soon as it would pass the
    cap, raising CheckpointTooBig (inline) or leaving a "failed" sidecar with
    error_type "CheckpointTooBig" (fork), and nothing is kept.

poll(path), wait(path, timeout=None)
    the state of a forked save: "writing", "complete" or "failed".

restore(path, expected_sha256)
    refuses a file whose sha256 differs from the one the runner recorded
    when the save completed (loading a pickle runs code), then loads it into
    the user namespace (all names or none) and restores the random states.
    A refusal before anything was unpickled raises CheckpointRefused: the
    kernel is untouched. Any other failure came after unpickling began,
    which runs code (imports, reduce functions): the namespace is unchanged,
    but the process may not be.

It needs dill (Debian: python3-dill) and nothing else outside the stdlib.
"""

import gc
import hashlib
import importlib
import importlib.util
import json
import os
import re
import signal
import struct
import sys
import tempfile
import time
import types
import warnings

FORMAT = "millrace-checkpoint/1"

# Seconds a forked save may take before it is killed (its own timer, and the
# kernel's at the next poll). A stuck child would otherwise hold memory and
# block every later checkpoint.
DEFAULT_DEADLINE = 600.0

# How a failed pickling is reported: the exception type and the first line of
# its message, cut to this length.
REASON_MAX = 200

# Names IPython keeps for its own history; user names that merely start with
# an underscore are the user's and are saved.
_IPYTHON_NAME = re.compile(r"^(_|__|___|_i|_ii|_iii|_i\d+|_\d+|_ih|_oh|_dh|In|Out|exit|quit|get_ipython)$")
_DUNDER = re.compile(r"^__.*__$")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CheckpointError(Exception):
    """A checkpoint could not be taken or restored; the message says why and
    what to do. Nothing in the namespace changed."""


class CheckpointTooBig(CheckpointError):
    """The checkpoint would pass save's max_bytes; the write was stopped
    there and nothing was kept."""


class CheckpointRefused(CheckpointError):
    """restore refused the file before unpickling anything (missing,
    incomplete, or not the recorded sha256): the kernel is untouched."""


class Summary(dict):
    """A result whose repr is its JSON, so that a user expression's text/plain
    is machine-readable without ast.literal_eval."""

    def __repr__(self):
        return json.dumps(self, sort_keys=True)


# The kernel's state: the names (and values) present when this module was
# installed, which the kernel put there, not the notebook; the forked save in
# flight; the finished ones by path.
_baseline = {}
_inflight = None
_finished = {}
_last_partial = False  # whether the last complete save skipped names


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None:
        raise CheckpointError("millrace_checkpoint runs inside an IPython kernel; there is no kernel here")
    return shell


def _install():
    global _baseline
    try:
        _baseline = dict(_shell().user_ns)
    except CheckpointError:
        _baseline = {}


def _reason(exc):
    text = str(exc).strip().splitlines()
    line = "%s: %s" % (type(exc).__name__, text[0]) if text else type(exc).__name__
    return line[:REASON_MAX]


def _kernel_owned(name, value, hidden):
    """Whether a name is IPython's or the kernel's, not the notebook's. A
    notebook that rebinds such a name (exit = 3) owns it from then on."""
    if _DUNDER.match(name) or _IPYTHON_NAME.match(name):
        return True
    for owned in (hidden, _baseline):
        if name in owned and owned[name] is value:
            return True
    return False


def user_names():
    """The names of the user namespace that a checkpoint covers, sorted: what
    the notebook defined, not what IPython or the kernel put there."""
    shell = _shell()
    hidden = shell.user_ns_hidden
    return sorted(n for n, v in shell.user_ns.items() if not _kernel_owned(n, v, hidden))


def _collect():
    """Split the user namespace into modules (saved by name) and values (to
    pickle); a module that cannot be imported by its name is skipped."""
    ns = _shell().user_ns
    modules, values, skipped = {}, {}, {}
    for name in user_names():
        value = ns[name]
        if isinstance(value, types.ModuleType):
            modname = getattr(value, "__name__", None)
            if isinstance(modname, str) and sys.modules.get(modname) is value and modname != "__main__":
                modules[name] = modname
            else:
                skipped[name] = "module %r is not importable by its name" % (modname,)
        else:
            values[name] = value
    return modules, values, skipped


def _random_states():
    """The global random generators' states, taken in the kernel (a forked
    child would see random reseeded by its at-fork hook). numpy and torch only
    when the notebook already imported them."""
    import random

    states = {"random": random.getstate()}
    np = sys.modules.get("numpy")
    if np is not None and hasattr(np, "random"):
        states["numpy"] = np.random.get_state()
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_rng_state"):
        states["torch"] = torch.get_rng_state()
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            states["torch_cuda"] = cuda.get_rng_state_all()
    return states


def _set_random_states(states):
    import random

    done = []
    if "random" in states:
        random.setstate(states["random"])
        done.append("random")
    if "numpy" in states:
        importlib.import_module("numpy").random.set_state(states["numpy"])
        done.append("numpy")
    if "torch" in states:
        torch = importlib.import_module("torch")
        torch.set_rng_state(states["torch"])
        done.append("torch")
        if "torch_cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["torch_cuda"])
            done.append("torch_cuda")
    return done


def fork_unsafe_reason():
    """Why forking this kernel is unsafe, or None. A CUDA context does not
    survive fork (the child would crash or hang in the driver), and a Python
    without os.fork has no fork at all."""
    if not hasattr(os, "fork"):
        return "os.fork is not available on this platform"
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None) if torch is not None else None
    if cuda is not None:
        try:
            if cuda.is_initialized():
                return "CUDA is initialised in this kernel (torch.cuda): fork would break it"
        except Exception as e:  # a broken torch is not a reason to fail the save
            return "torch.cuda could not be checked (%s)" % _reason(e)
    return None


class _HashingWriter:
    """A file that hashes what goes through it, so the sha256 costs no second
    read of the file."""

    def __init__(self, f, max_bytes=0):
        self._f = f
        self.sha = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes

    def write(self, data):
        n = memoryview(data).nbytes
        if self.max_bytes and self.size + n > self.max_bytes:
            # Checked before the bytes go out: a 200 MB array over the cap
            # is refused without writing it.
            raise CheckpointTooBig("the checkpoint needs more than max_bytes=%d bytes; nothing was kept" % self.max_bytes)
        self.sha.update(data)
        self.size += n
        return self._f.write(data)


class _NullWriter:
    def write(self, data):
        return memoryview(data).nbytes


# The file is the pickle stream, then the raw bytes of each out-of-band
# buffer, then a trailer: each buffer's length, the number of buffers and the
# stream's length (little-endian u64), and TRAILER_MAGIC.
TRAILER_MAGIC = b"MRCKPT01"


def _dump(obj, f):
    """Pickle obj to f; return the out-of-band buffers (numpy arrays' data),
    which the caller writes after the stream. dill's pickler is the pure
    Python one, which copies an in-band buffer (PickleBuffer.raw().tobytes()):
    on this kind of machine that copy was 45% of a save."""
    import dill

    buffers = []

    def out_of_band(buf):
        buffers.append(buf)
        return False

    # byref=False, recurse=False: functions and classes defined in the notebook
    # are pickled by value, and their globals refer to the new kernel's
    # namespace on load.
    dill.dump(obj, f, protocol=5, byref=False, recurse=False, buffer_callback=out_of_band)
    return buffers


def _write_payload(payload, f):
    """Write the whole checkpoint file format to f (a _HashingWriter)."""
    buffers = _dump(payload, f)
    stream = f.size
    lengths = []
    for buf in buffers:
        with buf.raw() as raw:
            f.write(raw)
            lengths.append(raw.nbytes)
    f.write(struct.pack("<%dQ" % (len(lengths) + 2), *lengths, len(lengths), stream) + TRAILER_MAGIC)


def _read_exact(f, size):
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return buf, got == size


def _layout(f, size):
    """The stream length, buffer lengths and trailer bytes that a file's
    trailer declares, or None when it has none or they do not add up to the
    file's size."""
    if size < 24:
        return None
    f.seek(size - 24)
    last = f.read(24)
    if len(last) != 24 or last[-8:] != TRAILER_MAGIC:
        return None
    count, stream = struct.unpack("<2Q", last[:16])
    trailer = 8 * (count + 2) + len(TRAILER_MAGIC)
    if count > size // 8 or trailer > size:
        return None
    f.seek(size - trailer)
    tail = f.read(trailer)
    lengths = list(struct.unpack("<%dQ" % count, tail[: 8 * count]))
    if len(tail) != trailer or stream + sum(lengths) + trailer != size:
        return None
    return stream, lengths, tail


def _read_verified(path, expected):
    """Read a checkpoint into memory, one buffer per out-of-band array so that
    each restored array owns its memory, and return (stream, buffers) only if
    the bytes read, in order, hash to expected. The layout comes from the
    trailer before the hash is known, so the trailer is read again in the
    hashed pass and must be the same: the file that is loaded is the file
    that was hashed."""
    try:
        f = open(path, "rb")
    except OSError as e:
        return None, "cannot read checkpoint %s: %s" % (path, _reason(e))
    with f:
        size = os.fstat(f.fileno()).st_size
        layout = _layout(f, size)
        if layout is None:
            return None, "%s is not a complete %s file (no valid trailer): refusing to load it" % (path, FORMAT)
        stream_len, lengths, tail = layout
        f.seek(0)
        sha = hashlib.sha256()
        parts = []
        for n in [stream_len] + lengths + [len(tail)]:
            buf, full = _read_exact(f, n)
            if not full:
                return None, "checkpoint %s changed while it was read: refusing to load it" % path
            sha.update(buf)
            parts.append(buf)
        if f.read(1):
            return None, "checkpoint %s changed while it was read: refusing to load it" % path
    got = sha.hexdigest()
    if got != expected:
        return None, (
            "checkpoint %s has sha256 %s, not the recorded %s: it was changed or is not that checkpoint; "
            "refusing to load it (loading a pickle runs code)" % (path, got, expected)
        )
    if bytes(parts[-1]) != tail:
        return None, "checkpoint %s changed while it was read: refusing to load it" % path
    return (parts[0], parts[1:-1]), None


def _probe(values):
    """The names whose values cannot be pickled on their own, with reasons."""
    bad = {}
    for name, value in values.items():
        try:
            _dump(value, _NullWriter())
        except Exception as e:
            bad[name] = _reason(e)
    return bad


def _fsync_dir(folder):
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic(path, fill):
    """Write path through a temporary file in its folder: fill(f) writes,
    then fsync, rename, fsync of the folder. Mode 0600: a checkpoint holds the
    notebook's data, and whoever can rewrite it runs code in the next kernel.
    Returns what fill returned."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            out = fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
        return out
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_sidecar(path, summary):
    data = json.dumps(summary, sort_keys=True).encode()
    _atomic(path + ".json", lambda f: f.write(data))


def _write_checkpoint(job, probe):
    """Pickle and write one checkpoint; return its summary (the caller writes
    the sidecar, the mark of a complete checkpoint).
    Runs in the kernel (inline) or in the forked child."""
    modules, values, skipped = job["modules"], dict(job["values"]), dict(job["skipped"])

    def payload():
        return {
            "format": FORMAT,
            "cell": job["cell"],
            "modules": modules,
            "names": values,
            "skipped": skipped,
            "random": job["random"],
        }

    def fill(f):
        w = _HashingWriter(f, job["max_bytes"])
        _write_payload(payload(), w)
        return w

    whole = None
    if probe == "always":
        bad = _probe(values)
        for name in bad:
            del values[name]
        skipped.update(bad)
    try:
        w = _atomic(job["path"], fill)
    except Exception as e:
        whole, w = e, None
    if isinstance(whole, CheckpointTooBig):
        # Outside the except block, so that a later error carries no chained
        # context (IPython fails to format a chained user-expression error).
        raise CheckpointTooBig(str(whole))
    if w is None:
        bad = _probe(values)
        if not bad:
            raise CheckpointError("the namespace cannot be pickled, though each name can on its own: %s" % _reason(whole))
        for name in bad:
            del values[name]
        skipped.update(bad)
        w = _atomic(job["path"], fill)
    done = time.monotonic()
    summary = Summary(job["summary"])
    summary.update(
        state="complete",
        size_bytes=w.size,
        sha256=w.sha.hexdigest(),
        total_seconds=round(done - job["started"], 6),
        saved=sorted(values),
        modules=modules,
        skipped=skipped,
        partial=bool(skipped),
    )
    return summary


def _child_private_bytes():
    """The pages this child owns alone (copied on write from the kernel, or
    allocated while pickling): the memory a forked save really costs."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            total = 0
            for line in f:
                if line.startswith(("Private_Dirty:", "Private_Clean:")):
                    total += int(line.split()[1]) * 1024
            return total
    except (OSError, ValueError):
        return None


def _run_child(job, probe, deadline):
    """The forked child: pickle, write, _exit. It only has the thread that
    forked; locks other kernel threads held (stdout, logging, ZMQ) may be held
    forever here, so it never prints, logs, collects garbage (a finaliser could
    touch the kernel's sockets) or runs exit handlers, and a timer kills it at
    its deadline even if it is stuck in C."""
    code = 1
    try:
        # The child is a background writer: at the lowest priority it
        # yields the processors to the kernel, whose reply to the save call
        # (the pause the next cell sees) and next cell it would otherwise
        # slow down, most of all on a machine with few cores.
        try:
            os.nice(19)
        except OSError:
            pass
        gc.disable()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is for the cell, not the checkpoint
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, deadline)
        devnull = open(os.devnull, "w")
        sys.stdout = sys.stderr = devnull
        warnings.simplefilter("ignore")
        summary = _write_checkpoint(job, probe)
        summary["child_private_bytes"] = _child_private_bytes()
        _write_sidecar(job["path"], summary)
        code = 0
    except BaseException as e:
        try:
            failed = Summary(job["summary"])
            failed.update(state="failed", error=_reason(e), error_type=type(e).__name__)
            _write_sidecar(job["path"], failed)
        except BaseException:
            pass
    finally:
        os._exit(code)


def _reap(block=False):
    """Collect the forked save if it ended (or kill it past its deadline) and
    return its final summary; None while it still runs."""
    global _inflight, _last_partial
    job = _inflight
    if job is None:
        return None
    if not block and time.monotonic() > job["started"] + job["deadline"]:
        try:
            os.kill(job["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        block = True
    pid, status = os.waitpid(job["pid"], 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    _inflight = None
    path = job["path"]
    summary = _read_sidecar(path)
    if summary is None or summary.get("cell") != job["cell"] or summary.get("state") not in ("complete", "failed"):
        summary = Summary(job["summary"])
        if os.WIFSIGNALED(status):
            why = "the checkpoint process was killed by signal %d" % os.WTERMSIG(status)
            if os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGALRM):
                why += " (deadline %g s, or out of memory)" % job["deadline"]
        else:
            why = "the checkpoint process exited with status %d and no result" % os.WEXITSTATUS(status)
        summary.update(state="failed", error=why)
        _remove_temporaries(path)
        # No sidecar is written for it: the caller learns the failure from
        # this summary, and a sidecar that is missing may have been removed
        # on purpose by a caller that read the child's own (a runner that
        # saw the failure first and discarded the files); writing one here
        # would leave a stray file behind it.
    summary["pause_seconds"] = job["summary"]["pause_seconds"]
    _finished[path] = summary
    if summary.get("state") == "complete":
        _last_partial = bool(summary.get("partial"))
    return summary


def _remove_temporaries(path):
    """Remove the temporary files a killed child left (it had no chance to)."""
    folder, base = os.path.split(path)
    for name in os.listdir(folder):
        if name.startswith("." + base + ".") and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _read_sidecar(path):
    try:
        with open(path + ".json", "rb") as f:
            return Summary(json.loads(f.read()))
    except (OSError, ValueError):
        return None


def poll(path):
    """The state of the checkpoint at path: "writing" while a forked save
    writes it, then "complete" (with size, sha256, names) or "failed" (with
    error); "unknown" when this kernel never saved it and no sidecar exists."""
    path = os.path.abspath(path)
    if _inflight is not None and _inflight["path"] == path:
        done = _reap()
        if done is None:
            s = Summary(_inflight["summary"])
            s["state"] = "writing"
            return s
        return done
    if path in _finished:
        return _finished[path]
    s = _read_sidecar(path)
    return s if s is not None else Summary(path=path, state="unknown")


def wait(path, timeout=None):
    """poll(path) until the checkpoint is no longer "writing", or timeout
    seconds passed (then it is still "writing")."""
    end = None if timeout is None else time.monotonic() + timeout
    pause = 0.002
    while True:
        s = poll(path)
        if s["state"] != "writing" or (end is not None and time.monotonic() >= end):
            return s
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def save(path, cell, mode="auto", if_busy="skip", deadline=DEFAULT_DEADLINE, probe="auto", max_bytes=0):
    """Checkpoint the user namespace to path (after cell index cell).

    mode: "inline", "fork" or "auto" (fork unless fork_unsafe_reason()).
    if_busy: when a forked save is still writing, "skip" returns at once with
    state "busy" (nothing saved), "wait" waits for it first.
    deadline: seconds a forked save may take before it is killed.
    probe: "on_failure" pickles the whole namespace and, only if that fails,
    each name alone to find the ones to skip; "always" probes first; "auto"
    probes first only when this kernel's previous save was partial (measured:
    a clean namespace saves about twice as fast without probing, a partial
    one about 30% faster with it, and a name that could not be pickled
    usually still cannot).
    max_bytes: the largest file to keep, 0 for no cap (see CheckpointTooBig).

    Returns a Summary: path, cell, mode, fallback (why fork was not used, or
    null), state ("complete", "writing", "busy"; a failure raises), pid (fork),
    pause_seconds (how long the kernel was held), and once complete
    size_bytes, sha256, total_seconds, saved, modules, skipped, partial."""
    global _inflight, _last_partial
    t0 = time.monotonic()
    if mode not in ("auto", "inline", "fork"):
        raise CheckpointError("mode must be 'auto', 'inline' or 'fork', not %r" % (mode,))
    if if_busy not in ("skip", "wait"):
        raise CheckpointError("if_busy must be 'skip' or 'wait', not %r" % (if_busy,))
    if probe not in ("auto", "on_failure", "always"):
        raise CheckpointError("probe must be 'auto', 'on_failure' or 'always', not %r" % (probe,))
    if probe == "auto":
        probe = "always" if _last_partial else "on_failure"
    if not isinstance(cell, int) or isinstance(cell, bool) or cell < 0:
        raise CheckpointError("cell must be a cell index (an int >= 0), not %r" % (cell,))
    if not isinstance(deadline, (int, float)) or not deadline > 0:
        raise CheckpointError("deadline must be a positive number of seconds, not %r" % (deadline,))
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
        raise CheckpointError("max_bytes must be a byte count (an int >= 0, 0 for no cap), not %r" % (max_bytes,))
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.dirname(path)):
        raise CheckpointError("checkpoint folder %s does not exist; create it first" % os.path.dirname(path))
    if _inflight is not None:
        _reap()
    if _inflight is not None:
        if if_busy == "skip":
            return Summary(path=path, cell=cell, state="busy", in_flight=_inflight["path"],
                           in_flight_cell=_inflight["cell"], pause_seconds=round(time.monotonic() - t0, 6))
        _reap(block=True)
    if importlib.util.find_spec("dill") is None:
        raise CheckpointError("dill is not installed for the kernel's Python (%s): apt-get install python3-dill, "
                              "or pip install dill in the kernel's environment" % sys.executable)
    import dill  # noqa: F401  (imported before the fork, not in the child)

    fallback = None
    use = mode
    if mode != "inline":
        fallback = fork_unsafe_reason()
        if fallback is not None:
            if mode == "fork":
                fallback = "fork refused: " + fallback
            use = "inline"
        else:
            use = "fork"
    # A sidecar left by an earlier save to this path must never vouch for this one.
    try:
        os.unlink(path + ".json")
    except FileNotFoundError:
        pass
    modules, values, skipped = _collect()
    job = {
        "path": path,
        "cell": cell,
        "started": t0,
        "deadline": float(deadline),
        "max_bytes": max_bytes,
        "modules": modules,
        "values": values,
        "skipped": skipped,
        "random": _random_states(),
        "summary": {"path": path, "cell": cell, "mode": use, "requested_mode": mode, "fallback": fallback,
                    "probe": probe},
    }
    if use == "fork":
        try:
            pid = os.fork()
        except OSError as e:
            pid = None
            use = "inline"
            job["summary"].update(mode="inline", fallback="fork failed: %s" % _reason(e))
        if pid is not None:
            # The child's sidecar gets its own reading, within microseconds
            # of the kernel's, which poll and wait report.
            job["summary"]["pause_seconds"] = round(time.monotonic() - t0, 6)
        if pid == 0:
            _run_child(job, probe, float(deadline))
        if pid is not None:
            job["pid"] = pid
            job["values"] = None  # the child has its copy; do not keep the references
            _inflight = job
            _finished.pop(path, None)
            s = Summary(job["summary"])
            s.update(state="writing", pid=pid)
            return s
    job["summary"]["pause_seconds"] = None
    summary = _write_checkpoint(job, probe)
    summary["pause_seconds"] = summary["total_seconds"]
    _write_sidecar(path, summary)
    _finished[path] = summary
    _last_partial = summary["partial"]
    return summary


def restore(path, expected_sha256):
    """Load the checkpoint at path into the user namespace, if and only if
    its sha256 is expected_sha256 (the one save reported when the file was
    complete). The file is read once into memory and that copy is hashed and
    loaded, so a file changed after the check is never the one loaded. Modules
    are re-imported; every name is set, or none (a failure raises and leaves
    the namespace as it was). Returns a Summary: path, cell, restored,
    modules, skipped_at_save, random, seconds."""
    t0 = time.monotonic()
    if not isinstance(expected_sha256, str) or not _SHA256.match(expected_sha256.lower()):
        raise CheckpointRefused("expected_sha256 must be the 64 hex digits save reported, not %r" % (expected_sha256,))
    expected = expected_sha256.lower()
    path = os.path.abspath(path)
    verified, refusal = _read_verified(path, expected)
    if refusal is not None:
        raise CheckpointRefused(refusal)
    stream, buffers = verified
    import dill

    payload, err = None, None
    try:
        payload = dill.loads(bytes(stream), buffers=buffers)
    except Exception as e:
        err = e
    del stream, buffers, verified
    if err is not None:
        raise CheckpointError("checkpoint %s does not load: %s" % (path, _reason(err)))
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError("%s is not a %s file" % (path, FORMAT))
    modules, failed = {}, {}
    for name, modname in payload["modules"].items():
        try:
            modules[name] = importlib.import_module(modname)
        except Exception as e:
            failed[name] = "import %s: %s" % (modname, _reason(e))
    if failed:
        raise CheckpointError(
            "checkpoint %s needs modules this kernel cannot import (%s); nothing was restored"
            % (path, "; ".join("%s: %s" % kv for kv in sorted(failed.items())))
        )
    ns = _shell().user_ns
    ns.update(modules)
    ns.update(payload["names"])
    done = _set_random_states(payload["random"])
    return Summary(
        path=path,
        cell=payload["cell"],
        restored=sorted(payload["names"]),
        modules=payload["modules"],
        skipped_at_save=payload["skipped"],
        random=done,
        seconds=round(time.monotonic() - t0, 6),
    )


_install()
