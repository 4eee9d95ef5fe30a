"""The demo's report.html in headless Chromium: it renders, logs no errors, fetches nothing,
and shows every joint display and figure the run wrote.

The browser is driven over the DevTools protocol through a pipe (``--remote-debugging-pipe``:
file descriptors 3 and 4, NUL-separated JSON), so no extra Python package is needed. Every
network request is made to fail (``--host-resolver-rules``), so a report that is not
self-contained logs an error. A screenshot of the whole page is saved in the test's tmp dir.

Where no Chromium can be found the tests skip with the reason; with
``CIMSTATS_REQUIRE_BROWSER=1`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
REQUIRE = os.environ.get("CIMSTATS_REQUIRE_BROWSER", "") not in ("", "0")


def find_chromium() -> str | None:
    """A Chromium executable: ``CIMSTATS_CHROMIUM``, else the first of the usual names on PATH."""
    explicit = os.environ.get("CIMSTATS_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A headless Chromium driven over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, profile: Path):
        cmd_r, cmd_w = os.pipe()     # we write commands; the browser reads them on fd 3
        out_r, out_w = os.pipe()     # the browser writes replies and events on fd 4
        # park the browser's ends above the low numbers so they can be moved to 3 and 4
        hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 100)
        hi_w = fcntl.fcntl(out_w, fcntl.F_DUPFD, 100)
        os.close(cmd_r)
        os.close(out_w)

        def in_child():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [executable, "--headless", "--remote-debugging-pipe", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--hide-scrollbars", f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,900"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")      # Chromium refuses to run as root with its sandbox
        self.proc = subprocess.Popen(args + ["about:blank"], pass_fds=(3, 4), preexec_fn=in_child,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        os.close(hi_r)
        os.close(hi_w)
        self._w = os.fdopen(cmd_w, "wb", buffering=0)
        self._r = os.fdopen(out_r, "rb", buffering=0)
        self._q: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._id = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf = b""
        while True:
            chunk = self._r.read(1 << 16)
            if not chunk:
                self._q.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self._q.put(json.loads(msg))

    def _next(self, deadline: float) -> dict:
        try:
            msg = self._q.get(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("the browser did not answer in time") from None
        if msg is None:
            err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""
            raise RuntimeError(f"the browser exited: {err}")
        return msg

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 120) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._w.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 120) -> dict:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + timeout
        while True:
            e = self._next(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def open(self, path: Path) -> str:
        """Open a file in a new tab, wait for its load event, return the tab's session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        self.wait_for("Page.loadEventFired")
        self.evaluate(session, "new Promise(r => requestAnimationFrame(() => setTimeout(r, 200)))")
        return session

    def evaluate(self, session: str, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=session)
        if "exceptionDetails" in res:
            raise RuntimeError(f"script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, session: str, path: Path) -> Path:
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=session)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and failed loads, as text."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                              for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                ent = p["entry"]
                out.append(f"{ent.get('source')} {ent['level']}: {ent.get('text')} {ent.get('url', '')}".strip())
        return out

    def close(self):
        try:
            self.send("Browser.close", timeout=15)
        except Exception:  # noqa: BLE001 - closing a browser that already went away
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        reason = ("no Chromium found (looked for CIMSTATS_CHROMIUM and " + ", ".join(CANDIDATES) +
                  " on PATH); install Debian's chromium package to run the browser test")
        if REQUIRE:
            pytest.fail(reason + " - CIMSTATS_REQUIRE_BROWSER is set, so this is an error")
        pytest.skip(reason)
    b = Browser(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


# what the page looks like to a reader: headings, tables, figures, text alternatives, remote references
PAGE_FACTS = r"""
(() => {
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const text = el => (el.textContent || "").replace(/\s+/g, " ").trim();
  const figures = [...document.querySelectorAll("figure")].map(f => {
    const img = f.querySelector("svg, img, canvas");
    const alt = img ? (img.getAttribute("aria-label") || img.getAttribute("alt") ||
                       (img.querySelector && img.querySelector("title") ? text(img.querySelector("title")) : "")) : "";
    return {label: f.getAttribute("aria-label") || "", caption: text(f.querySelector("figcaption") || f),
            has_image: !!img, visible: !!img && visible(img),
            decoded: !img || img.tagName.toLowerCase() !== "img" || (img.complete && img.naturalWidth > 0),
            alt: alt};
  });
  const tables = [...document.querySelectorAll("table")].map(t => ({
    th: t.querySelectorAll("th").length, rows: t.querySelectorAll("tr").length, visible: visible(t),
    caption: text(t.querySelector("caption") || t)}));
  const sections = {};
  for (const h of document.querySelectorAll("h2")) {
    const sec = h.closest("section") || h.parentElement;
    sections[text(h)] = [...sec.querySelectorAll("h3")].map(text);
  }
  const remote = [...document.querySelectorAll("[src], link[href]")]
     .map(e => e.getAttribute("src") || e.getAttribute("href"))
     .filter(u => /^(https?:)?\/\//i.test(u));
  return {title: document.title, lang: document.documentElement.lang,
          h1: [...document.querySelectorAll("h1")].map(text), sections, figures, tables, remote,
          images_without_alt: [...document.querySelectorAll("img:not([alt])")].length,
          text: text(document.body), height: document.documentElement.scrollHeight};
})()
"""


def _index(folder: Path, ext: str) -> pd.DataFrame:
    """The outputs written to a folder: its index.csv (file, title, ...) or, without one, the files."""
    idx = folder / "index.csv"
    files = sorted(p.stem for p in folder.glob(f"*.{ext}"))
    if idx.exists():
        frame = pd.read_csv(idx, dtype=str, keep_default_na=False)
        return frame.loc[frame["file"].isin(files)].reset_index(drop=True)
    return pd.DataFrame({"file": files, "title": files})


def _check_page(facts: dict) -> None:
    assert facts["title"] and facts["h1"], "the page has no title or no top heading"
    assert facts["lang"], "the <html> element has no lang attribute"
    assert not facts["remote"], f"the page references remote resources: {facts['remote']}"
    assert facts["images_without_alt"] == 0
    for t in facts["tables"]:
        assert t["th"] > 0, "a table without header cells"


def test_demo_report_renders_with_every_joint_display_and_figure(request, browser, tmp_path):
    try:
        out = Path(request.getfixturevalue("demo_run"))
    except pytest.FixtureLookupError:
        pytest.fail("the `demo_run` fixture (tests/conftest.py) is missing: it runs `cimstats demo` once per session")
    report = out / "report.html"
    assert report.is_file(), f"{report} was not written"
    session = browser.open(report)
    facts = browser.evaluate(session, PAGE_FACTS)
    shot = browser.screenshot(session, tmp_path / "report.png")
    assert shot.stat().st_size > 10_000
    assert not browser.problems(), browser.problems()
    _check_page(facts)
    assert facts["height"] > 2000, "the report is (nearly) empty"

    # every joint display the run wrote is in the report, as a table captioned with its title
    displays = _index(out / "joint_displays", "html")
    assert len(displays) >= 1, "the run wrote no joint display"
    shown = [t["caption"] for t in facts["tables"] if t["visible"]]
    for title in displays["title"]:
        assert any(title in c for c in shown), f"joint display {title!r} is not in the report"

    # every figure the run wrote is in the report, drawn, with a text alternative
    figures = _index(out / "figures", "svg")
    assert len(figures) >= 1, "the run drew no figure"
    drawn = {f["label"]: f for f in facts["figures"]}
    for title in figures["title"]:
        assert title in drawn, f"figure {title!r} is not in the report"
        f = drawn[title]
        assert f["has_image"] and f["visible"] and f["decoded"], f"figure {title!r} is not drawn"
        assert f["alt"] or f["caption"], f"figure {title!r} has no text alternative"


def test_a_joint_display_page_renders_cleanly(browser, tmp_path):
    """The HTML renderer on its own: a joint display of the demo themes, with escaping and notes."""
    import cimstats
    from cimstats.datasets import coded_excerpts, theme_codebook
    from cimstats.integrate import theme_codebook_from_dict

    book = theme_codebook_from_dict(theme_codebook())
    table = pd.DataFrame({
        "hypothesis_id": ["NAV1", "CE1", "NEG1"],
        "mechanism": ["network_navigation", "collective_efficacy", "negotiation"],
        "statement": ["Diverse networks <help> self-management", "Collective efficacy & mediation",
                      "Role re-allocation buffers decline"],
        "estimate": [0.086, 0.044, float("nan")], "ci_lower": [0.06, 0.035, float("nan")],
        "ci_upper": [0.11, 0.053, float("nan")], "p_value": [1e-12, 8e-22, float("nan")],
        "verdict": ["supported", "supported", "not testable"], "theme_ids": ["T1;T2", "T1;T3", "T3"]})
    display = cimstats.joint_display(table, kind="side_by_side", codebook=book, excerpts=coded_excerpts(),
                                     title="Mechanisms and themes")
    page = tmp_path / "joint.html"
    display.render(page)
    session = browser.open(page)
    facts = browser.evaluate(session, PAGE_FACTS)
    browser.screenshot(session, tmp_path / "joint.png")
    assert not browser.problems(), browser.problems()
    assert not facts["remote"]
    assert facts["tables"] and all(t["th"] > 0 and t["visible"] for t in facts["tables"])
    assert "Diverse networks <help> self-management" in facts["text"]
    assert "Mechanisms and themes" in facts["text"] and "Role re-allocation buffers decline" in facts["text"]
