"""The explorers as a user meets them: JupyterLab on localhost, the widgets notebook opened in Debian's Chromium
(driven by Playwright; the system browser, never a downloaded one), Run All, then a control changed by hand."""
import json, os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright; no browser download needed)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (Debian: apt install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "A JupyterLab server on a copy of the widgets notebook (so autosave never touches the repository)."
    root = tmp_path_factory.mktemp("lab")
    (root / "nbs").mkdir()
    shutil.copy(ROOT / "nbs" / "92_widgets.ipynb", root / "nbs" / "explorers.ipynb")
    shutil.copy(ROOT / "settings.ini", root / "settings.ini")          # as in a checkout: show_doc's renderer is named there
    (root / "outputs").symlink_to(ROOT / "outputs")
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell (JupyterLab 4 only puts the cells in view into the page by default)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), "shortcut-nb-test"
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"), "JUPYTER_CONFIG_DIR": str(root / "config"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces")}   # not the user's saved tabs: Lab would reopen them here
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False", "--ServerApp.port_retries=0"]
    if os.getuid() == 0: cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url, token
    proc.terminate()
    try: proc.wait(timeout=30)
    except subprocess.TimeoutExpired: proc.kill()


def dismiss_dialog(page) -> None:
    "Answer a JupyterLab modal dialog the way a user accepting the defaults would (its accept button, else Escape)."
    dialog = page.locator(".jp-Dialog")
    if not dialog.count(): return
    accept = dialog.locator(".jp-mod-accept")
    if accept.count(): accept.first.click()
    else: page.keyboard.press("Escape")
    page.wait_for_timeout(500)


CELL_RAN = "[...document.querySelectorAll('.jp-InputArea-prompt')].some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"   # a prompt shows [*] or [n]


def run_all_cells(page) -> None:
    "Run ▸ Run All Cells, through the menu as a user does."
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=20_000)
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click(timeout=20_000)


def test_explorers_respond_in_a_real_browser(lab):
    url, token = lab
    shots = Path(os.environ.get("SHORTCUT_NB_SCREENSHOTS", "/tmp"))
    errors = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/lab/tree/nbs/explorers.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        for attempt in range(5):                     # Run ▸ Run All Cells, as a user does, once the kernel has connected
            dismiss_dialog(page)                     # e.g. Lab asking which kernel to start when the machine is slow
            try:
                run_all_cells(page)
            except playwright.TimeoutError:
                continue
            try:
                page.wait_for_function(CELL_RAN, timeout=20_000)
                break
            except playwright.TimeoutError:
                page.keyboard.press("Escape")
        else:
            pytest.fail("Run ▸ Run All Cells started no cell in 5 tries (no kernel?)")
        # every explorer of the notebook draws (one <img> each, from the live kernel)
        drawn = "[...document.querySelectorAll('img.widget-image')].filter(i => i.naturalWidth > 0).length >= 8"
        for wait in range(4):                        # up to 4 × 120 s; a busy CI machine has lost a Run All (every prompt back to [ ])
            try:
                page.wait_for_function(drawn, timeout=120_000)   # drawn: a failing explorer hides its picture
                break
            except playwright.TimeoutError:
                if wait == 3 or page.evaluate(CELL_RAN): continue    # cells ran or are running: keep waiting
                dismiss_dialog(page)
                run_all_cells(page)
        else:
            page.screenshot(path=str(shots / "explorers-failed.png"), full_page=True)
            pytest.fail("the explorers drew no pictures within 8 min")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=300_000)
        assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0, "a cell raised"
        assert page.locator("span[style*='#b00020']").count() == 0, "an explorer shows an error instead of its picture"
        shown_text = page.locator(".jp-Notebook").inner_text()
        assert "{target=" not in shown_text, "show_doc's source link shows as raw text"          # rendered as a link instead
        assert page.locator(".jp-RenderedMarkdown a:text-is('source')").count() >= 1
        # change a control of the shortcut explorer as a user would; its picture must change
        maker = page.locator("select:has(option:text-is('ℓ∞ patch noise (SHR)'))").first
        maker.scroll_into_view_if_needed()
        image = maker.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]//img[contains(@class,'widget-image')]").first
        before = image.get_attribute("src")
        maker.select_option(label="ℓ∞ patch noise (SHR)")
        page.wait_for_function("([img, old]) => img.getAttribute('src') !== old", arg=[image.element_handle(), before], timeout=60_000)
        assert image.evaluate("img => img.naturalWidth") > 100
        page.screenshot(path=str(shots / "explorers.png"))
        browser.close()
    serious = [e for e in errors if "favicon" not in e]
    assert not serious, serious


@pytest.mark.smoke_paper("spurious_xbl")
def test_docs_pages_render_their_figures(tmp_path, smoke_run):
    "`make docs` pages: a paper's executed notebook shows its figures (decoded images) and its tables as HTML tables."
    from shortcut_nb.docs import build_docs
    out = smoke_run("spurious_xbl")                      # this session's executed notebook: outputs/<paper>/smoke/
    root = tmp_path / "checkout"
    root.mkdir()
    for d in ("nbs", "papers"): (root / d).symlink_to(ROOT / d)
    (root / "outputs").symlink_to(out.parent.parent)
    index = build_docs(tmp_path / "site", root=root, scale="smoke", only=["spurious_xbl", "92_widgets"])
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(index.as_uri())
        assert page.locator("a[href='spurious_xbl.html']").count() == 1     # the front page links the paper
        page.goto((tmp_path / "site" / "spurious_xbl.html").as_uri())
        shown = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        assert len(shown) >= 5 and all(w > 0 for w in shown), shown
        assert page.locator("table:has-text('· published')").count() >= 2   # the paper's tables as HTML, not printed Markdown
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
        page.goto((tmp_path / "site" / "92_widgets.html").as_uri())
        explorers = page.evaluate("[...document.images].filter(i => i.naturalWidth > 0).length")
        assert explorers >= 8, explorers                       # each explorer shows its picture without a kernel
        assert "{target=" not in page.inner_text("body") and page.locator("a:text-is('source')").count() >= 1
        browser.close()
