"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (no websocket library, no
browser download): headless Chromium from Debian's ``chromium`` package.

Messages are JSON terminated by NUL; the browser reads commands on its fd 3 and writes on its fd 4.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("BENCHKIT_CHROMIUM")
    if env:
        return env
    for c in CANDIDATES:
        p = shutil.which(c)
        if p:
            return p
    return None


class Browser:
    def __init__(self, exe: str, width: int = 1280, height: int = 900, timeout: float = 60.0, stderr=None):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="benchkit-chromium-")
        r_cmd, w_cmd = os.pipe()  # we write commands -> browser fd 3
        r_out, w_out = os.pipe()  # browser fd 4 -> we read
        real = "/usr/lib/chromium/chromium"  # Debian's launcher script only adds flags for desktop use
        exe = real if os.path.basename(exe) == "chromium" and os.access(real, os.X_OK) else exe
        args = [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "--hide-scrollbars",
                "--allow-file-access-from-files", "about:blank"]

        def child_fds():  # copies first, so that neither target number clobbers the other source
            a, b = os.dup(r_cmd), os.dup(w_out)
            os.dup2(a, 3)
            os.dup2(b, 4)
            for fd in {a, b, r_cmd, w_out} - {3, 4}:
                os.close(fd)

        self.proc = subprocess.Popen(args, pass_fds=(3, 4, r_cmd, w_out), preexec_fn=child_fds,
                                     stdout=subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL)
        # the child got its own copies; keep ours of the other ends only
        os.close(r_cmd)
        os.close(w_out)
        self.wfd, self.rfd = w_cmd, r_out
        self.buf = b""
        self.next_id = 0
        self.events: list = []
        self.session = None

    # -- transport
    def _send(self, method, params=None, session=None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline):
        import select

        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from chromium")
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session="page"):
        sess = self.session if session == "page" else session
        i = self._send(method, params, sess)
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_one(deadline)
            if m.get("id") == i:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def wait_event(self, name, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        for k, e in enumerate(self.events):
            if e["method"] == name:
                return self.events.pop(k)
        while True:
            m = self._read_one(deadline)
            if "method" in m:
                if m["method"] == name:
                    return m
                self.events.append(m)

    # -- page
    def open_page(self):
        t = self.call("Target.createTarget", {"url": "about:blank"}, session=None)
        a = self.call("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True}, session=None)
        self.session = a["sessionId"]
        for dom in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(dom)

    def goto(self, url):
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        # let pending image decodes and handlers settle
        self.eval("new Promise(r => setTimeout(r, 200))", await_promise=True)

    def eval(self, expr, await_promise=False):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            raise RuntimeError(f"page exception in {expr!r}: {r['exceptionDetails']}")
        return r.get("result", {}).get("value")

    def screenshot(self, path, full_page=True):
        import base64

        params = {"format": "png"}
        if full_page:
            m = self.call("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                               "height": min(size["height"], 4000), "scale": 1})
        data = self.call("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def errors(self) -> list:
        """Console errors, uncaught exceptions and failed loads seen so far (drains pending events)."""
        self.eval("1")  # flush
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + json.dumps(p.get("args", []))[:500])
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", ""))
        return out

    def close(self):
        try:
            self.call("Browser.close", session=None)
        except (OSError, RuntimeError, TimeoutError):  # already gone: the wait below reaps it
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        self.open_page()
        return self

    def __exit__(self, *exc):
        self.close()
