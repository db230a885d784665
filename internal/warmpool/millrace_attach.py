"""millrace's warm-pool attach process.

    python3 -I -S millrace_attach.py SOCKET -- PYTHON RUNNER ARGS...

The worker starts this where it would start the cold runner (PYTHON RUNNER
ARGS...), with the same process group, Pdeathsig, marker, cgroup, cwd,
environment and descriptors. It hands all of them to the zygote at SOCKET,
which forks the run from its warm process, and then stands in for it: it
forwards SIGTERM, SIGINT and SIGHUP to the run's process group and exits as
the run exited. When the zygote cannot take the run (no zygote, a slow or
broken one, a run it refuses) within CONNECT_WITHIN seconds, it execs the cold
runner in place, so that nothing about the run depends on the pool. -I -S: it
starts in about 20 ms and runs no site or user code.
"""

import os
import signal
import socket
import sys

CONNECT_WITHIN = 1.0  # seconds to a zygote's answer before going cold


def say(msg):
    sys.stderr.write("[millrace-warm] %s\n" % msg)
    sys.stderr.flush()


def cold(argv, why):
    say("cold start: %s" % why)
    os.execv(argv[0], argv)


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
    s.settimeout(CONNECT_WITHIN)
    try:
        s.connect(sock_path)
        import json

        socket.send_fds(s, [json.dumps(req).encode()], fds + [cwd])
        answer = s.recv(4096).decode()
    except OSError as e:
        s.close()
        if pending:
            return 128 + pending[0]
        cold(argv, "no warm zygote at %s (%s)" % (sock_path, e))
    os.close(cwd)
    if not answer.startswith("ok "):
        s.close()
        if pending:
            return 128 + pending[0]
        cold(argv, answer[len("cold "):] if answer.startswith("cold ") else "the zygote gave no answer")
    run_pid[0] = int(answer.split()[1])
    for sig in pending:
        forward(sig, None)
    s.settimeout(None)
    while True:
        try:
            msg = s.recv(4096).decode()
            break
        except InterruptedError:
            continue
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
