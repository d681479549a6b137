"""JupyterLab itself, driven in headless Chromium as a learner uses it after `make lab`.

The server is started the way `make lab` starts it (tools/lab.py: the .venv's Python first on PATH),
on the loopback, over a temporary copy of the notebooks (JupyterLab autosaves). The browser may reach
only that server. A chapter notebook is run in full, an explorer control is moved and the figure
must change; an exercise notebook is run and the first stub's message must show.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import lab  # noqa: E402  (tools/lab.py)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE = os.environ.get("COURSE_REQUIRE_BROWSER") == "1"
CHAPTER = "notebooks/ch01_polysemanticity.ipynb"  # one explorer (neuron), about 30 s on a 2-core CPU
EXERCISES = "exercises/ch00_warmup.ipynb"
TOKEN = "course-lab-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if REQUIRE:
            pytest.fail(f"Chromium not found at {CHROMIUM}; CI installs it (tools/ensure_chromium.sh)")
        pytest.skip("Chromium is not installed (tools/ensure_chromium.sh); CI installs it and runs this test")
    root = tmp_path_factory.mktemp("lab")
    for rel in (CHAPTER, EXERCISES):
        shutil.copy(ROOT / rel, root / Path(rel).name)
    port = _free_port()
    cmd = lab.lab_command(port, open_browser=False, root=root, extra=[
        f"--IdentityProvider.token={TOKEN}", "--ServerApp.ip=127.0.0.1", "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"])
    env = lab.lab_env()
    env["JUPYTER_CONFIG_DIR"] = str(root / ".jupyter")  # no user settings
    # render every cell (JupyterLab 4 leaves off-screen cells out of the page by default)
    settings = root / ".lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / ".lab-settings")
    # a learner's kernel: not the website build's IPython profile (its renderer writes static HTML), but
    # still offline under the test suite
    startup = root / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-offline.py").write_text("from course_utils.offline import block_network\nblock_network()\n")
    env["IPYTHONDIR"] = str(root / ".ipython")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as r:
                if json.load(r):
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {proc.stdout.read()[-3000:]}")
            time.sleep(1)
    else:
        proc.terminate()
        pytest.fail("JupyterLab did not answer within 120 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        outside: list[str] = []

        def route(r):
            if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost"):
                return r.continue_()
            outside.append(r.request.url)
            return r.abort()

        context.route("**/*", route)
        pg = context.new_page()
        pg.outside = outside
        yield pg
        browser.close()


def _open_and_run_all(page, server: str, name: str, timeout_s: float = 300, wait_done: bool = True) -> None:
    page.goto(f"{server}/lab/tree/{name}?reset&token={TOKEN}")  # reset: only this notebook open
    page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')",
                           timeout=90_000)
    page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator') === null || "
                           "!document.title.includes('Busy')", timeout=60_000)
    # the kernel must be ready before "run all"
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                           " return w && w.sessionContext && w.sessionContext.session &&"
                           " w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; }",
                           timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    if not wait_done:
        return
    # done when no cell is queued or running ([*]) and the kernel is idle again
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const busy = [...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));"
        " return !busy && w.sessionContext.session.kernel.status === 'idle'; }",
        timeout=timeout_s * 1000, polling=1000)


FIGURE_SIGNATURE = """() => {
  const plots = [...document.querySelectorAll('.widget-output .js-plotly-plot')];
  return plots.map(p => JSON.stringify((p.data || []).map(t => [t.type, t.z || t.y || t.text || null]))).join('|');
}"""


def test_chapter_notebook_runs_and_its_explorer_is_live(page, server):
    _open_and_run_all(page, server, Path(CHAPTER).name)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not tracebacks, f"errors while running {CHAPTER}:\n" + "\n".join(tracebacks)[:3000]
    slider = page.locator(".widget-vbox", has=page.locator(".widget-output")).first
    handle = slider.locator(".noUi-handle").first
    handle.wait_for(state="attached", timeout=30_000)
    handle.scroll_into_view_if_needed()
    page.wait_for_function(f"() => ({FIGURE_SIGNATURE})().length > 0", timeout=60_000)
    label = slider.locator(".widget-label").first.inner_text()
    assert label == "neuron", f"explorer control labelled {label!r}"
    before = page.evaluate(FIGURE_SIGNATURE)
    readout = slider.locator(".widget-readout").first.inner_text()
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"(before) => {{ const s = ({FIGURE_SIGNATURE})(); return s.length > 0 && s !== before; }}",
                           arg=before, timeout=60_000)
    assert slider.locator(".widget-readout").first.inner_text() != readout
    # the only outside request: the Open-in-Colab badge image (offline, its alt text shows instead)
    others = [u for u in page.outside if u != "https://colab.research.google.com/assets/colab-badge.svg"]
    assert not others, f"the notebook tried to reach the internet: {others[:5]}"


def test_exercise_notebook_shows_the_first_stub_message(page, server):
    _open_and_run_all(page, server, Path(EXERCISES).name, wait_done=False)
    err = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
                       has_text="NotImplementedError").first
    err.wait_for(state="attached", timeout=240_000)
    text = err.inner_text()
    assert "Exercise 0.1" in text and "replace this line with your implementation" in text, text[:2000]


def test_terminal_python_is_the_venv_and_the_grading_line_runs(server):
    """A JupyterLab terminal: `python` is the one with the course, so the printed grading line works."""
    import asyncio

    from tornado.websocket import websocket_connect

    req = urllib.request.Request(f"{server}/api/terminals?token={TOKEN}", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=30) as r:
        name = json.load(r)["name"]

    async def talk() -> str:
        ws = await websocket_connect(f"{server.replace('http', 'ws')}/terminals/websocket/{name}?token={TOKEN}")
        ws.write_message(json.dumps(["stdin", "python -c 'import sys, course_utils; print(sys.executable)'; "
                                              "python -m course_utils.grade --help | head -1; echo DONE-$((6*7))\r"]))
        seen = ""
        deadline = time.time() + 120
        while "DONE-42" not in seen and time.time() < deadline:
            msg = await asyncio.wait_for(ws.read_message(), timeout=120)
            if msg is None:
                break
            kind, *rest = json.loads(msg)
            if kind == "stdout":
                seen += rest[0]
        ws.close()
        return seen

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # playwright's event loop runs in this thread
        out = pool.submit(lambda: asyncio.run(talk())).result()
    assert sys.executable in out or str(Path(sys.executable).parent) in out, out[-2000:]
    assert "usage:" in out.lower(), f"the grading command did not run in the terminal:\n{out[-2000:]}"
