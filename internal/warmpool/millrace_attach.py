"""millrace's warm-pool attach process.

    python3 -I -S millrace_attach.py SOCKET -- PYTHON RUNNER ARGS...

The worker starts this where it would start the cold runner (PYTHON RUNNER
ARGS...), with the same process group, Pdeathsig, marker, cgroup, cwd,
environment and descriptors. It hands all of them to the zygote at SOCKET,
which forks the run from its warm process, and then stands in for it: it
forwards SIGTERM, SIGINT and SIGHUP to the run's process group and exits as
the run exited. When the zygote cannot take the run (no zygote, a stopped or
broken one, a run it refuses), it execs the cold runner in place, so that
nothing about the run depends on the pool. -I -S: it starts in about 20 ms
and runs no site or user code.

The zygote says "ready" when it takes the call, and only then does this
process send the run's descriptors: in a message queued on a stopped zygote
they would hold the run's output open after it went cold. It then answers
twice: "forked PID" as soon as it has forked the run's
process R (its own loop's work: milliseconds), then R answers "ok PID" once
it has made itself the run's (cgroups, descriptors, environment, the
kernel's embryo). R runs the run only when this process then says "go": a
run this process gave up on and started cold never runs twice. Only the
zygote's own answers have a deadline (ZYGOTE_WITHIN from the call; at once
if the zygote is stopped or gone): on a machine busy with other runs, R's part can take
seconds of waiting for a processor. R cannot hang there: it answers, asks
for a cold start itself ("cold REASON"), or dies, which the zygote reports
("exit STATUS") before anything of the run's ran, and the run goes cold.
"""

import os
import signal
import socket
import struct
import sys
import time

# Seconds to the zygote's first answer before going cold. It is one
# single-threaded process: with ten runs starting at once on two busy
# processors, its turn to fork each can take more than a second, and a
# cold start then would cost the machine three times the processor of the
# warm one. A zygote that is stopped or gone is seen at once (SLICE).
ZYGOTE_WITHIN = 10.0
SLICE = 0.25


def say(msg):
    sys.stderr.write("[millrace-warm] %s\n" % msg)
    sys.stderr.flush()


def cold(argv, why):
    say("cold start: %s" % why)
    os.execv(argv[0], argv)


def recv(s):
    """The next message on s, waiting as long as it takes."""
    while True:
        try:
            return s.recv(4096).decode()
        except InterruptedError:
            continue


def zygote_answer(s, deadline):
    """The zygote's next answer, waiting while it is alive and running."""
    zpid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
    s.settimeout(SLICE)
    while True:
        try:
            return s.recv(4096).decode()
        except socket.timeout:
            if time.monotonic() > deadline:
                raise
            try:
                with open("/proc/%d/stat" % zpid) as f:
                    state = f.read().rpartition(")")[2].split()[0]
            except OSError:
                state = "X"
            if state in "TtZX":
                raise OSError("the zygote is stopped or gone (state %s)" % state)
        except InterruptedError:
            continue


def inherited_fds():
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            os.fstat(fd)
        except OSError:
            continue  # listdir's own descriptor, closed by now
        fds.append(fd)
    return sorted(fds)


def main():
    sock_path, sep, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if sep != "--" or len(argv) < 2:
        say("usage: millrace_attach.py SOCKET -- PYTHON RUNNER ARGS...")
        return 5
    fds = inherited_fds()
    pending = []
    run_pid = [0]

    def forward(sig, frame):
        if run_pid[0]:
            try:
                os.killpg(run_pid[0], sig)
            except OSError:
                pass
        else:
            pending.append(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)

    mask = os.umask(0)
    os.umask(mask)
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    req = {"argv": argv, "env": dict(os.environ), "umask": mask, "fds": fds}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(SLICE)
    try:
        deadline = time.monotonic() + ZYGOTE_WITHIN
        s.connect(sock_path)
        answer = zygote_answer(s, deadline)
        if answer != "ready":
            raise OSError("the zygote said %r, not ready" % answer[:80])
        import json

        socket.send_fds(s, [json.dumps(req).encode()], fds + [cwd])
        answer = zygote_answer(s, deadline)
        if answer.startswith("forked "):
            s.settimeout(None)
            answer = recv(s)
    except OSError as e:
        s.close()
        if pending:
            return 128 + pending[0]
        cold(argv, "no warm zygote at %s (%s)" % (sock_path, e))
    os.close(cwd)
    if answer.startswith("exit "):
        answer = "cold the run's process died while it was being prepared (wait status %s)" % answer.split()[1]
    if not answer.startswith("ok "):
        s.close()
        if pending:
            return 128 + pending[0]
        cold(argv, answer[len("cold "):] if answer.startswith("cold ") else "the zygote gave no answer")
    run_pid[0] = int(answer.split()[1])
    try:
        s.send(b"go")
    except OSError:
        pass  # the zygote is gone, and R with it: the next recv says so
    for sig in pending:
        forward(sig, None)
    msg = recv(s)
    while msg.startswith("forked "):  # the zygote's answer, after R's own
        msg = recv(s)
    if not msg.startswith("exit "):
        say("the zygote went away during the run")
        return 128 + signal.SIGKILL
    status = int(msg.split()[1])
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
