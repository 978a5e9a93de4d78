"""A real headless Chromium driven through the DevTools protocol over a pipe (no driver, no
network): load a page, click elements and press keys with real input events, read the DOM,
and keep every console message and uncaught exception."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-pipe", "--window-size=1400,1800",
]  # fmt: skip
CONSOLE_EVENTS = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")


class Browser:
    """One Chromium process with one page; use as a context manager."""

    def __init__(self, profile: Path, timeout: float = 30) -> None:
        to_chrome, chrome_reads = os.pipe()[::-1]
        chrome_writes, from_chrome = os.pipe()[::-1]

        def on_fds_3_and_4() -> None:  # the protocol pipe: Chromium reads fd 3, writes fd 4
            read, write = os.dup(chrome_reads), os.dup(chrome_writes)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.proc = subprocess.Popen(
            ["chromium", *FLAGS, f"--user-data-dir={profile}"],
            preexec_fn=on_fds_3_and_4, pass_fds=(3, 4),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(chrome_reads)
        os.close(chrome_writes)
        self._out, self._in, self._buffer = to_chrome, from_chrome, b""
        self._id, self.timeout = 0, timeout
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        try:
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            attached = self.send("Target.attachToTarget", targetId=target, flatten=True)
            self.session = attached["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.__exit__()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.session = None
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self._out)
            os.close(self._in)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events that arrive meanwhile are kept)."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._next(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer")
            if select.select([self._in], [], [], min(left, 1.0))[0]:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise EOFError("Chromium closed the protocol pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def open(self, url: str) -> None:
        """Navigate and wait until the dashboard's script has finished (body data-ready)."""
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && document.body.dataset.ready === '1'")

    def wait_for(self, condition: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.eval(condition):
            if time.monotonic() > deadline:
                raise TimeoutError(condition)
            time.sleep(0.05)

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A left click (mouse down and up) at the middle of the element."""
        box = self.eval(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)  # fmt: skip

    def choose(self, selector: str, value: str) -> None:
        """Pick the option `value` of a <select> with the keyboard, as a person would."""
        select_js = f"document.querySelector({json.dumps(selector)})"
        values = self.eval(f"[...{select_js}.options].map((o) => o.value)")
        self.eval(f"{select_js}.focus()")
        moves = values.index(value) - self.eval(f"{select_js}.selectedIndex")
        key, code = ("ArrowDown", 40) if moves > 0 else ("ArrowUp", 38)
        for _ in range(abs(moves)):
            for kind in ("keyDown", "keyUp"):
                self.send("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                          windowsVirtualKeyCode=code)  # fmt: skip
        assert self.eval(f"{select_js}.value") == value

    def console(self) -> list[dict[str, Any]]:
        """Every console message and uncaught exception so far."""
        return [e for e in self.events if e.get("method") in CONSOLE_EVENTS]
