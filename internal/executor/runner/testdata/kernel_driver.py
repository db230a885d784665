"""Drive real IPython kernels through jupyter_client, step by step, for the
checkpoint tests and benchmark: the Go side writes the steps, this script
runs them and prints one JSON result per step.

    kernel_driver.py BOOTSTRAP_FILE < steps.json

steps.json is a list of steps; each is an object with "op":

    start      start a new kernel (the previous one, if any, is shut down
               first) and send BOOTSTRAP_FILE as a silent execute_request,
               unless "bootstrap": false
    bootstrap  send BOOTSTRAP_FILE as a silent execute_request
    run        execute "code" as a notebook cell; result: ok, stdout, error
    call       evaluate "expr" as a user expression (as the runner will call
               the checkpoint library) with silent empty code; result: ok,
               value (the text/plain parsed as JSON when it is JSON), error
    stop       shut the kernel down

Every result also has "op" and "wall" (seconds, as the driver saw it). The
kernels use IPC sockets in a private folder, as the runner does, so kernels
started together never race for TCP ports.
"""

import json
import os
import shutil
import sys
import tempfile
import time

from jupyter_client import KernelManager

TIMEOUT = 300


class Driver:
    def __init__(self, bootstrap):
        self.bootstrap_code = bootstrap
        self.km = None
        self.kc = None
        self.ipc = tempfile.mkdtemp(prefix="millrace-driver-")

    def start(self, step):
        self.stop({})
        self.km = KernelManager(kernel_name="python3")
        self.km.transport, self.km.ip = "ipc", os.path.join(self.ipc, "k%d" % time.monotonic_ns())
        env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")  # silence debugpy
        self.km.start_kernel(cwd=step.get("cwd") or os.getcwd(), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=TIMEOUT)
        if step.get("bootstrap", True):
            return self.bootstrap({})
        return {"ok": True}

    def bootstrap(self, step):
        reply = self.kc.execute_interactive(
            self.bootstrap_code, silent=True, store_history=False, timeout=TIMEOUT
        )
        return self._reply(reply, "")

    def run(self, step):
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        reply = self.kc.execute_interactive(step["code"], timeout=TIMEOUT, output_hook=hook)
        return self._reply(reply, "".join(out))

    def call(self, step):
        reply = self.kc.execute_interactive(
            "", silent=True, store_history=False, user_expressions={"r": step["expr"]}, timeout=TIMEOUT
        )
        content = reply["content"]
        if content["status"] != "ok":
            return {"ok": False, "error": "%s: %s" % (content.get("ename"), content.get("evalue"))}
        r = content["user_expressions"]["r"]
        if r["status"] != "ok":
            return {"ok": False, "error": "%s: %s" % (r.get("ename"), r.get("evalue"))}
        text = r["data"]["text/plain"]
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        return {"ok": True, "value": value}

    def stop(self, step):
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km is not None:
            self.km.shutdown_kernel(now=False)
            self.km = None
        return {"ok": True}

    @staticmethod
    def _reply(reply, stdout):
        content = reply["content"]
        res = {"ok": content["status"] == "ok", "stdout": stdout}
        if content["status"] != "ok":
            res["error"] = "%s: %s" % (content.get("ename"), content.get("evalue"))
        return res


def main():
    with open(sys.argv[1]) as f:
        bootstrap = f.read()
    steps = json.load(sys.stdin)
    d = Driver(bootstrap)
    results = []
    try:
        for step in steps:
            t0 = time.monotonic()
            res = getattr(d, step["op"])(step)
            res["op"] = step["op"]
            res["wall"] = round(time.monotonic() - t0, 6)
            results.append(res)
    finally:
        d.stop({})
        shutil.rmtree(d.ipc, ignore_errors=True)
        json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
