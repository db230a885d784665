"""millrace's warm-pool zygote: CPython's forkserver idea applied to Jupyter kernels.

    python3 millrace_zygote.py SOCKET RUNNER_SCRIPT [--warm-imports a,b]

It imports what the bundled runner and an ipykernel kernel import (nbclient,
jupyter_client, ipykernel, IPython, and the --warm-imports), starts no
thread, zmq context or event loop, prints "ready ..." on stdout and serves
SOCKET (a SOCK_SEQPACKET unix socket in a 0700 folder; a peer of another uid
is refused by SO_PEERCRED as well). One loop, one thread.

A request comes from millrace_attach.py, which the worker started exactly as
it starts a cold runner (process group, Pdeathsig, the attempt's marker,
cgroup, cwd, env, descriptors). It carries the runner's argv, the env, the
umask and, by SCM_RIGHTS, the attach process's descriptors and its cwd. The
zygote forks R, which before it runs anything of the run's:
  - leads a session of its own and dies with the zygote (PR_SET_PDEATHSIG);
  - joins the attach process's cgroups and takes its rlimits, so the run's
    limits hold for every instruction of the run;
  - writes the attempt's marker into its initial environment block, which is
    what /proc/PID/environ shows: the worker's marker sweep finds R, and the
    kernel forked from it, as it finds a cold run's processes;
  - takes the descriptors at their numbers, the cwd, umask and environment;
  - forks the kernel embryo K (while no event loop or zmq thread exists);
then answers "ok PID" and, once the attach process says "go", runs the
runner's code as __main__. The runner asks
this module (sys.modules["millrace_zygote"]) for a provisioner: jupyter_client
then starts the kernel by handing the connection file to K, which runs
ipykernel_launcher as `python -m ipykernel_launcher -f FILE` would. Nothing is
ever reused: every run gets a fresh R and a fresh K.

What a forked run keeps from the zygote, where a cold start would differ:
str hashes use the zygote's seed (PYTHONHASHSEED is chosen once per
process); modules imported by the zygote read their environment then (the
worker's, not the run's: a run that changes PYTHON*, HOME, LANG or LC_*
goes cold); the kernel has the runner's modules imported (nbclient,
jupyter_client), as the warm-up put them there; its memory pages are shared
with the zygote until written, and counted in the zygote's cgroup until
then. random reseeds itself on fork, and numpy's global generator is
reseeded here.

The zygote reports R's wait status to the attach process, which exits with
it; when the attach process goes away (Stop's SIGKILL), the zygote kills R's
session. Any refusal ("cold REASON") makes the attach process exec the cold
runner itself, so a run never depends on the zygote being healthy.
"""

import array
import atexit
import builtins
import ctypes
import importlib
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import time
import types

PR_SET_PDEATHSIG = 1
MARKER = "MILLRACE_ATTEMPT_ID"
MAX_FDS = 64
# Variables that change how a Python process starts (its sys.path, site,
# locale, hashing...): a run whose values differ from the zygote's would
# start differently cold, so it goes cold.
STARTUP_NAMES = ("HOME", "LANG", "LC_ALL", "LC_CTYPE")
IPYKERNEL_ARGV_TAIL = ["-m", "ipykernel_launcher", "-f", "{connection_file}"]

_libc = ctypes.CDLL(None, use_errno=True)


def log(msg):
    sys.stderr.write("[millrace-zygote] %s\n" % msg)
    sys.stderr.flush()


# -- warm-up --------------------------------------------------------------

WARM = [
    "nbformat", "nbclient", "nbclient.exceptions", "jupyter_client", "jupyter_client.manager",
    "jupyter_client.kernelspec", "jupyter_client.provisioning", "ipykernel", "ipykernel.kernelapp",
    "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.iostream", "ipykernel.heartbeat",
    "ipykernel.parentpoller", "ipykernel.eventloops", "ipykernel.comm", "ipykernel.debugger",
    "ipykernel.pickleutil", "ipykernel.serialize", "IPython", "IPython.core.interactiveshell",
    "IPython.core.completer", "IPython.core.history", "IPython.core.magics", "jedi",
]


TINY_NOTEBOOK = (
    '{"cells": [{"cell_type": "code", "execution_count": null, "id": "a", "metadata": {}, '
    '"outputs": [], "source": ""}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
)


def warm_up(extra):
    failed = []
    for name in WARM + extra:
        try:
            importlib.import_module(name)
        except Exception as e:  # a missing optional module only costs its warmth
            if name in extra:
                failed.append("%s (%s: %s)" % (name, type(e).__name__, e))
    # What the runner does first, done once here: the first notebook read
    # builds nbformat's validator, and the first kernelspec lookup imports
    # what the specs' providers import (ipykernel's debugger, debugpy).
    try:
        import nbformat
        from jupyter_client.kernelspec import KernelSpecManager

        nbformat.reads(TINY_NOTEBOOK, as_version=4)
        ksm = KernelSpecManager()
        for name in ksm.find_kernel_specs():
            ksm.get_kernel_spec(name)
    except Exception as e:
        failed.append("runner warm-up (%s: %s)" % (type(e).__name__, e))
    return failed


def startup_env(env):
    return {k: v for k, v in env.items() if k.startswith("PYTHON") or k in STARTUP_NAMES}


def fingerprint(paths):
    """What the pool's warmth depends on: the folders Python imports from and
    the kernelspec folders, by mtime (an install adds or removes entries)."""
    out = []
    for p in paths:
        try:
            out.append((p, os.stat(p).st_mtime_ns))
        except OSError:
            out.append((p, None))
    return out


# -- the run process (R) ---------------------------------------------------


def prctl_pdeathsig(sig):
    if _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def reset_signals():
    """A cold Python starts with these dispositions."""
    signal.set_wakeup_fd(-1)
    for s in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(s, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def cgroup_mounts():
    """Maps a cgroup hierarchy's key (its controllers, "" for v2) to its mount."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if not rfields:
                continue
            if rfields[0] == "cgroup2":
                mounts.setdefault("", fields[4])
            elif rfields[0] == "cgroup":
                opts = set(rfields[2].split(",")) if len(rfields) > 2 else set()
                mounts.setdefault(frozenset(opts), fields[4])
    return mounts


def join_cgroups(pid):
    """Move this process into pid's cgroups (every hierarchy in which they differ)."""
    def read(p):
        with open("/proc/%s/cgroup" % p) as f:
            return [l.rstrip("\n").split(":", 2) for l in f if l.strip()]

    mine = {(h, c): path for h, c, path in read("self")}
    mounts = None
    for h, ctrls, path in read(pid):
        if mine.get((h, ctrls)) == path:
            continue
        if mounts is None:
            mounts = cgroup_mounts()
        if ctrls == "":
            mount = mounts.get("")
        else:
            names = set(ctrls.split(","))
            mount = next((m for k, m in mounts.items() if k != "" and names <= k), None)
        if mount is None:
            raise OSError("no mount for cgroup hierarchy %s:%s" % (h, ctrls))
        with open(os.path.join(mount, path.lstrip("/"), "cgroup.procs"), "w") as f:
            f.write("0")
    if read("self") != read(pid):
        raise OSError("cgroups differ after the move")


def copy_rlimits(pid):
    import resource

    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            r = getattr(resource, name)
            try:
                lim = resource.prlimit(pid, r)
                if resource.getrlimit(r) != lim:
                    resource.setrlimit(r, lim)
            except (OSError, ValueError):
                pass


def _stat_span(first):
    """The [start, end) addresses stat(5) gives at fields first, first + 1
    (48: the arguments, 50: the environment)."""
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[first - 3]), int(fields[first - 2])


def _rewrite(span, entries, what):
    """Write NUL-separated entries over a block of this process's initial
    stack (what /proc/PID/cmdline and environ read, the way setproctitle
    rewrites argv), NUL-padded: the first entry must fit, the others are
    written while they fit."""
    start, end = span
    size = end - start
    out = b""
    for i, e in enumerate(entries):
        if len(out) + len(e) + 1 > size:
            if i == 0:
                raise OSError("%s does not fit the zygote's block" % what)
            continue
        out += e + b"\0"
    ctypes.memmove(start, out + b"\0" * (size - len(out)), size)


def set_environ(env):
    """Make env this process's environment, as exec would have: in
    os.environ, in C's environ (which subprocess hands to the programs it
    starts), and in /proc/PID/environ, where the worker's sweeps find a
    run's processes by their marker and tools (ps e, the tests) see a
    run's variables. /proc shows the zygote's environment block, sized by
    the placeholder marker the worker gave it (warmpool.markerPad): the
    marker goes first, then the other variables while they fit."""
    _libc.clearenv()  # C's environ pointed into the block; setenv copies
    os.environ.clear()
    os.environ.update(env)
    marker = env.get(MARKER)
    entries = [] if marker is None else [("%s=%s" % (MARKER, marker)).encode()]
    entries += [os.fsencode("%s=%s" % kv) for kv in env.items() if kv[0] != MARKER]
    _rewrite(_stat_span(50), entries, "the marker")


def set_cmdline(argv):
    """Show argv as this process's command line (ps, /proc/PID/cmdline), as
    a cold start of it would: the zygote's arguments end with a
    placeholder (warmpool.titlePad) that makes room. Best effort."""
    try:
        _rewrite(_stat_span(48), [os.fsencode(a) for a in argv], "the command line")
    except (OSError, ValueError):
        pass


def place_fds(pairs):
    """Give each received descriptor its number in the attach process: parked
    above every target first, so that placing one never closes another not
    yet placed. A number the zygote's modules hold is refused (see RESERVED)."""
    import fcntl

    clash = sorted(n for n, _ in pairs if n in _module_fds)
    if clash:
        raise OSError("descriptors %s are the zygote's" % clash)
    parked = []
    for num, fd in pairs:
        parked.append((num, fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1024)))
        os.close(fd)
    for num, fd in parked:
        os.dup2(fd, num, inheritable=True)
        os.close(fd)


def open_fds():
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue  # listdir's own, closed by now
        fds.append(int(name))
    return fds


def close_fds_but(keep):
    """Close every descriptor but keep and the ones the zygote's modules
    opened as they were imported (IPython keeps a devnull open and closes it
    at exit): module state stays as a cold process has it."""
    keep = set(keep) | _module_fds
    for fd in open_fds():
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


MADV_POPULATE_WRITE = 23  # Linux 5.14
PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT_RUN = re.compile(rb"[\x80-\xff]+")
PAGEMAP_WINDOW = 1 << 17
# Bytes a forked process copies at birth at most (own_pages); the bundled
# runner's zygote has about 55 MB of such pages, 60 with numpy.
OWN_PAGES_MAX = 128 << 20


def own_pages():
    """Copy, now, every page this process shares with the zygote and may
    write: the resident pages of its private writable mappings.

    A forked Python writes most of the pages it touches (reference counts),
    and each first write is a copy-on-write fault. Once the process has
    threads (zmq's, ipykernel's) on several processors, every such fault
    also flushes the other processors' TLBs by interrupt, which on a virtual
    machine costs more than the copy: measured here, faults were 40% of a
    forked run's processor time with 10 runs at once. Done while the process
    is still single-threaded, one madvise per range copies the pages
    without those interrupts. Pages never present stay unallocated.

    The cost is memory: the process owns what it would otherwise share
    until written (measured: a run's runner and kernel held 140 MB instead
    of 72, where a cold run holds 120). Past OWN_PAGES_MAX, as with large
    warm imports, the memory matters more than the faults, and the process
    keeps sharing."""
    ranges = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if parts[1][:2] != "rw" or parts[1][3] != "p" or (len(parts) > 5 and parts[5].startswith("[v")):
                    continue  # not private and writable, or the kernel's [vvar]/[vsyscall]
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((lo, hi))
        pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError:
        return
    present, total = [], 0
    try:
        for lo, hi in ranges:
            # In windows of 128k pages (1 MB of entries): a library may
            # reserve gigabytes of address space it never touches.
            for at in range(lo, hi, PAGEMAP_WINDOW * PAGE):
                n = min(PAGEMAP_WINDOW, (hi - at) // PAGE)
                entries = os.pread(pagemap, n * 8, at // PAGE * 8)
                # An entry's bit 63 says the page is present: the high bit
                # of its last byte. Runs of present pages, one madvise each.
                for m in PRESENT_RUN.finditer(entries[7::8]):
                    present.append((at + m.start() * PAGE, (m.end() - m.start()) * PAGE))
                    total += present[-1][1]
    except OSError:
        return
    finally:
        os.close(pagemap)
    if total > OWN_PAGES_MAX:
        return
    for start, length in present:
        _libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), MADV_POPULATE_WRITE)


def reseed():
    """random reseeds itself on fork; numpy's legacy global generator does not."""
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed()
        except Exception:
            pass


def exit_code(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write("%s\n" % code)
    return 1


def run_as_main(fn):
    """Run fn as a program's main and leave the process, never returning to
    the zygote's code: atexit handlers run and streams flush as at a normal exit."""
    code = 0
    try:
        fn()
    except SystemExit as e:
        code = exit_code(e)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass
    os._exit(code & 0xFF)


class Embryo:
    """The kernel K, forked while R has no event loop and no zmq thread: it
    waits for its command on a pipe (EOF: unused, it exits)."""

    def __init__(self):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            try:
                os.setsid()  # jupyter_client starts kernels in a session of their own
                prctl_pdeathsig(signal.SIGKILL)
            except OSError:
                os._exit(1)
            own_pages()  # while it waits, and has no thread yet
            self._wait(r)
        os.close(r)
        self.pid, self.w = pid, w

    @staticmethod
    def _wait(r):
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
            if data.endswith(b"\n"):
                break
        if not data.endswith(b"\n"):
            os._exit(0)
        req = json.loads(data)
        # As Popen(close_fds=True, stdin=PIPE): the command pipe becomes stdin.
        os.dup2(r, 0, inheritable=True)
        close_fds_but([0, 1, 2])
        os.chdir(req["cwd"])
        set_environ(req["env"])
        set_cmdline(req["argv"])
        sys.modules.pop("millrace_zygote", None)  # a cold kernel has no such module
        reseed()
        # ipykernel reads these into its traits' defaults when it is
        # imported, which was in the zygote.
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.parent_handle.default_value = int(os.environ.get("JPY_PARENT_PID") or 0)
        IPKernelApp.interrupt.default_value = int(os.environ.get("JPY_INTERRUPT_EVENT") or 0)
        args = req["argv"][3:]  # after PYTHON -m ipykernel_launcher: -f FILE and nbclient's extra arguments

        def kernel():
            import runpy

            # `python -m ipykernel_launcher -f FILE` has the working folder first on sys.path.
            sys.path[0] = os.getcwd()
            sys.argv = ["-m"] + args
            runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)

        run_as_main(kernel)

    def launch(self, argv, env, cwd):
        os.write(self.w, (json.dumps({"argv": argv, "env": env, "cwd": cwd}) + "\n").encode())
        return ForkedKernel(self.pid, os.fdopen(self.w, "wb"))

    def discard(self):
        os.close(self.w)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


class ForkedKernel:
    """The parts of subprocess.Popen that jupyter_client uses, for K."""

    stdout = stderr = None

    def __init__(self, pid, stdin):
        self.pid, self.stdin, self.returncode = pid, stdin, None

    def _status(self, flags):
        if self.returncode is not None:
            return self.returncode
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:
            self.returncode = 0
            return 0
        if pid == 0:
            return None
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self):
        return self._status(os.WNOHANG)

    def wait(self, timeout=None):
        return self._status(0)

    def send_signal(self, sig):
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


_embryo = None
_zygote_startup = {}
# Descriptors the zygote's modules opened while it warmed up (not the ones
# it inherited: a run closes those, or takes its own at their numbers).
# RESERVED low
# numbers are held open during the warm-up so that those land above them,
# out of the way of the descriptors a run brings (0-2 and the worker's
# extra files from 3).
RESERVED = 64
_module_fds = set()


def provision(km):
    """Called by the runner with its kernel manager before the kernel starts:
    a kernelspec that runs this very Python's ipykernel gets the forked
    kernel; any other starts as jupyter_client starts it."""
    global _embryo
    emb, _embryo = _embryo, None
    if emb is None:
        return
    spec = km.kernel_spec
    argv = list(spec.argv) if spec is not None else []
    if (argv[1:] != IPYKERNEL_ARGV_TAIL or not os.path.isabs(argv[0])
            or os.path.realpath(argv[0]) != os.path.realpath(sys.executable)):
        emb.discard()
        return
    from jupyter_client.provisioning import LocalProvisioner

    class ForkProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd, **kwargs):
            env = dict(kwargs.get("env") or os.environ)
            if startup_env(env) != _zygote_startup:
                emb.discard()
                return await super().launch_kernel(cmd, **kwargs)
            env["JPY_PARENT_PID"] = str(os.getpid())
            cwd = kwargs.get("cwd") or os.getcwd()
            self.process = emb.launch(cmd, env, cwd)
            self.pid = self.pgid = self.process.pid
            return self.connection_info

    import uuid

    km.kernel_id = km.kernel_id or str(uuid.uuid4())
    km.provisioner = ForkProvisioner(kernel_id=km.kernel_id, kernel_spec=spec, parent=km)


def run_request(conn, req, fds, peer_pid, runner_code, runner_script):
    """R: make this process the run's, then run the runner. Never returns."""
    global _embryo
    try:
        os.setsid()
        prctl_pdeathsig(signal.SIGKILL)
        if os.getppid() == 1:
            os._exit(1)
        reset_signals()
        join_cgroups(peer_pid)
        copy_rlimits(peer_pid)
        nums = req["fds"]
        os.fchdir(fds[len(nums)])
        os.umask(req["umask"])
        # The answer goes on a socket outside the numbers being placed.
        import fcntl

        cfd = fcntl.fcntl(conn.fileno(), fcntl.F_DUPFD_CLOEXEC, 1024)
        conn.close()
        close_fds_but([0, 1, 2, cfd] + fds)  # the zygote's sockets and pipes
        os.close(fds[len(nums)])
        place_fds(list(zip(nums, fds[:len(nums)])))
        conn = socket.socket(fileno=cfd)
        set_environ(req["env"])
        set_cmdline(req["argv"])
        reseed()
        _embryo = Embryo()
        own_pages()
    except Exception as e:
        try:
            conn.send(("cold %s: %s" % (type(e).__name__, e)).encode())
        finally:
            os._exit(1)
    conn.send(("ok %d" % os.getpid()).encode())
    # Nothing of the run's runs before the attach process says it is still
    # waiting for this process: one that gave up and started the run cold
    # has closed its end, and this process leaves.
    try:
        go = conn.recv(16)
    except OSError:
        go = b""
    if go != b"go":
        os._exit(0)
    conn.close()

    def runner():
        mod = types.ModuleType("__main__")
        mod.__file__ = runner_script
        mod.__builtins__ = builtins
        sys.modules["__main__"] = mod
        sys.argv = [runner_script] + req["argv"][2:]
        exec(runner_code, mod.__dict__)

    run_as_main(runner)


# -- the zygote's loop ------------------------------------------------------


class Zygote:
    def __init__(self, path, runner_script):
        self.path, self.runner_script = path, runner_script
        with open(runner_script) as f:
            self.runner_code = compile(f.read(), runner_script, "exec")
        # epoll rather than selectors: a run's connection is watched for its
        # peer's hang-up only (EPOLLRDHUP), not for data, which is R's.
        self.ep = select.epoll()
        self.watch = {}  # fd -> (kind, data)
        self.runs = {}  # conn -> (pid, pidfd)
        self.draining = False
        from jupyter_client.kernelspec import KernelSpecManager

        # sys.path[0] is the runner's own folder, written to by every new
        # runner version: not part of the environment.
        self.watched = [p for p in sys.path[1:] if p] + list(KernelSpecManager().kernel_dirs)
        self.print = fingerprint(self.watched)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake = rfd
        signal.set_wakeup_fd(wfd)
        signal.signal(signal.SIGTERM, lambda *a: setattr(self, "draining", True))
        self.add(rfd, select.EPOLLIN, "wake", None)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)
        try:
            self.lsock.bind(path)
        finally:
            os.umask(old)
        self.lsock.listen(64)
        self.add(self.lsock.fileno(), select.EPOLLIN, "listen", None)

    def serve(self):
        while True:
            if self.draining and self.lsock is not None:
                self.stop_listening()
            if self.lsock is None and not self.runs:
                return
            for fd, _ in self.ep.poll():
                if fd not in self.watch:
                    continue  # unwatched by an event earlier in this batch
                kind, data = self.watch[fd]
                if kind == "wake":
                    try:
                        os.read(self.wake, 512)
                    except BlockingIOError:
                        pass
                elif kind == "listen":
                    self.accept()
                elif kind == "conn":
                    self.peer_gone(data)
                elif kind == "pid":
                    self.reap(data)

    def add(self, fd, events, kind, data):
        self.ep.register(fd, events)
        self.watch[fd] = (kind, data)

    def remove(self, fd):
        if self.watch.pop(fd, None) is not None:
            self.ep.unregister(fd)

    def stop_listening(self):
        sys.stdout.write("draining\n")
        sys.stdout.flush()
        self.remove(self.lsock.fileno())
        self.lsock.close()
        self.lsock = None
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def accept(self):
        try:
            conn, _ = self.lsock.accept()
        except OSError:
            return
        fds = []
        try:
            conn.settimeout(2)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _ = struct.unpack("3i", creds)
            if uid != os.getuid():
                conn.close()
                return
            # The attach process sends the run's descriptors only once this
            # process has taken its call: descriptors queued on a zygote that
            # is stopped would hold the run's output open after it went cold.
            conn.send(b"ready")
            msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, MAX_FDS)
            req = json.loads(msg)
            why = self.refuse(req)
            if why:
                conn.send(("cold " + why).encode())
                conn.close()
                for fd in fds:
                    os.close(fd)
                return
            for s in (sys.stdout, sys.stderr):
                s.flush()
            rpid = os.fork()
        except Exception as e:
            log("request refused: %s: %s" % (type(e).__name__, e))
            try:
                conn.send(("cold zygote error %s" % type(e).__name__).encode())
            except OSError:
                pass
            conn.close()
            for fd in fds:
                os.close(fd)
            return
        if rpid == 0:
            try:
                conn.settimeout(None)
                run_request(conn, req, fds, pid, self.runner_code, self.runner_script)
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)
        try:
            conn.send(("forked %d" % rpid).encode())  # R's own answer follows
        except OSError:
            pass  # the attach process is gone: peer_gone ends R
        pidfd = os.pidfd_open(rpid)
        self.runs[conn] = (rpid, pidfd)
        self.add(conn.fileno(), select.EPOLLRDHUP, "conn", conn)
        self.add(pidfd, select.EPOLLIN, "pid", conn)

    def refuse(self, req):
        argv = req.get("argv") or []
        if len(argv) < 2 or os.path.realpath(argv[0]) != os.path.realpath(sys.executable):
            return "another python"
        if argv[1] != self.runner_script:
            return "another runner script"
        if startup_env(req.get("env", {})) != _zygote_startup:
            return "the run's environment changes how Python starts"
        if fingerprint(self.watched) != self.print:
            self.draining = True
            return "stale: the Python environment changed since the zygote started"
        return ""

    def peer_gone(self, conn):
        """The attach process's end closed (it was killed): end the run's session."""
        pid, _ = self.runs.get(conn, (None, None))
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        self.remove(conn.fileno())

    def reap(self, conn):
        pid, pidfd = self.runs.pop(conn)
        self.remove(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        try:
            os.killpg(pid, signal.SIGKILL)  # what the run left in its group
        except OSError:
            pass
        try:
            conn.send(("exit %d" % status).encode())
        except OSError:
            pass
        self.remove(conn.fileno())
        conn.close()


def rss():
    try:
        with open("/proc/self/smaps_rollup") as f:
            vals = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[-1] == "kB"}
        return vals.get("Rss", 0) * 1024, vals.get("Pss", 0) * 1024
    except OSError:
        return 0, 0


def main(argv):
    sys.modules["millrace_zygote"] = sys.modules[__name__]
    import argparse

    p = argparse.ArgumentParser(prog="millrace_zygote.py")
    p.add_argument("socket")
    p.add_argument("runner")
    p.add_argument("--warm-imports", default="")
    p.add_argument("--title-pad", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    global _zygote_startup
    _zygote_startup = startup_env(os.environ)
    t0 = time.monotonic()
    inherited = set(open_fds())
    held = []
    while True:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if fd >= RESERVED:
            os.close(fd)
            break
        held.append(fd)
    extra = [m for m in args.warm_imports.split(",") if m.strip()]
    failed = warm_up([m.strip() for m in extra])
    for f in failed:
        log("warm import failed: %s" % f)
    for fd in held:
        os.close(fd)
    _module_fds.update(set(open_fds()) - inherited)
    import threading

    if threading.active_count() != 1:
        log("imports started threads: %s" % [t.name for t in threading.enumerate()])
        return 2
    # Everything imported so far moves to the permanent generation: the
    # forked processes' collections never walk it, which would write to
    # (and so copy) nearly every page they share with the zygote.
    import gc

    gc.freeze()
    z = Zygote(args.socket, os.path.abspath(args.runner))
    r, p_ = rss()
    sys.stdout.write("ready %.3f %d %d\n" % (time.monotonic() - t0, r, p_))
    sys.stdout.flush()
    z.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
