"""JupyterLab and the run report, checked as a person would: in a real headless browser.

One test starts JupyterLab on localhost (the server and its kernels are this environment's Python, as
``make lab`` starts them), opens a paper notebook with its test parameters injected the way papermill injects
them, runs all cells from the Run menu, waits for the figure and saves the notebook; the saved file must hold
the figure and no error. The other opens a run's ``report.html`` and checks its summary table and figures.
Both save a screenshot to ``$ZSLAB_TEST_ARTIFACTS`` (default: ``test-artifacts/`` in the project root).

The browser is Debian's chromium with chromium-driver (tools/system_assets.sh installs both as root), driven
by selenium (a declared dependency) with no browser download: without them the tests fail as root (CI) and
skip otherwise.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List, Optional

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import require_system_asset
from zslab.papers import get_paper
from zslab.records import load_records
from zslab.runner.execute import run_notebooks
from zslab.runner.report import write_report

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "clip_prompt_engineering"          # a paper notebook that encodes images and draws a figure
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = "run tools/system_assets.sh as root (apt-get install -y chromium chromium-driver)"
TOKEN = "zslab-browser-test"

pytestmark = pytest.mark.notebook


def _artifacts() -> Path:
    folder = Path(os.environ.get("ZSLAB_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    require_system_asset(CHROMIUM is not None and CHROMEDRIVER is not None, "chromium and chromium-driver", INSTALL)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer at {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, zsclip_micro):
    """JupyterLab serving a folder with the paper notebook, its test parameters injected; settings, workspaces
    and runtime files in temporary folders so that nothing of the user's is read or written."""
    root = tmp_path_factory.mktemp("lab")
    nb = load_notebook_node(str(ROOT / "notebooks" / f"{NOTEBOOK}.ipynb"))       # as papermill reads it
    nb = parameterize_notebook(nb, get_paper(NOTEBOOK).test_parameters)
    nbformat.write(nb, root / f"{NOTEBOOK}.ipynb")
    home = tmp_path_factory.mktemp("jupyter")
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')                # no "get notified about news?" toast over cells
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "ZSLAB_RECORDS": str(root / "records" / f"{NOTEBOOK}.json"), "ZSLAB_NOTEBOOK": NOTEBOOK}
    port = _free_port()
    log = home / "lab.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={TOKEN}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=root)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", process, log)
        yield {"url": f"http://127.0.0.1:{port}", "root": root, "log": log}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _accept_kernel_dialog(driver) -> None:
    """JupyterLab sometimes asks which kernel to start (a "Select Kernel" dialog over the page, seen on a
    loaded 2-core machine although the toolbar showed the kernel idle); take its default, the notebook's own
    kernel, so the dialog does not swallow the next click."""
    for button in driver.find_elements(By.CSS_SELECTOR, "dialog.jp-Dialog button.jp-mod-accept"):
        if button.is_displayed():
            button.click()
            WebDriverWait(driver, 10).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "dialog.jp-Dialog")))


def _click_menu(driver, menu: str, command: str) -> None:
    """Open a menu of the menu bar by its label and click the item bound to ``command``."""
    _accept_kernel_dialog(driver)
    wait = WebDriverWait(driver, 30)
    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='{menu}']]"))).click()
    wait.until(EC.element_to_be_clickable(
        (By.CSS_SELECTOR, f"li.lm-Menu-item[data-command='{command}']"))).click()


def _prompts(driver) -> List[str]:
    return [p.text for p in driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-InputPrompt")]


def _run_all_cells(driver, attempts: int = 3) -> None:
    """Run > Run All Cells, clicked again if no cell has started 20 s later (a click that lands while the
    menu is still opening does nothing, and waiting minutes for a figure would only then tell)."""
    for _ in range(attempts):
        _click_menu(driver, "Run", "runmenu:run-all")
        try:
            WebDriverWait(driver, 20).until(lambda d: any(re.search(r"\[(\*|\d+)\]", p) for p in _prompts(d)))
            return
        except TimeoutException:
            continue
    raise AssertionError(f"no cell started after {attempts} clicks on Run > Run All Cells")


@contextlib.contextmanager
def _screenshot_on_failure(driver, name: str, log: Optional[Path] = None) -> Iterator[None]:
    """A failing browser check leaves a picture of the page (and the server log's tail) behind."""
    try:
        yield
    except Exception as error:
        driver.save_screenshot(str(_artifacts() / f"{name}_failure.png"))
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise AssertionError(f"{error}\nprompts: {_prompts(driver)}\nscreenshot: {_artifacts()}/{name}_failure.png"
                             f"\nserver log tail:\n{tail}") from error


def test_jupyterlab_runs_a_paper_notebook_and_shows_its_figure(browser, lab):
    driver = browser
    figure = (By.CSS_SELECTOR, ".jp-OutputArea-output img")
    with _screenshot_on_failure(driver, "jupyterlab_notebook", lab["log"]):
        driver.get(f"{lab['url']}/lab/tree/{NOTEBOOK}.ipynb?token={TOKEN}")
        WebDriverWait(driver, 90).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
        WebDriverWait(driver, 90).until(           # the kernel has started: the toolbar shows it idle
            EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")))
        _run_all_cells(driver)
        WebDriverWait(driver, 240).until(EC.presence_of_element_located(figure))
        WebDriverWait(driver, 240, poll_frequency=1).until(lambda d: not any("[*]" in p for p in _prompts(d)))
    images = driver.find_elements(*figure)
    assert images and all(driver.execute_script("return arguments[0].naturalWidth", img) > 100 for img in images)
    images[0].location_once_scrolled_into_view          # reading it scrolls the figure into view
    shot = _artifacts() / "jupyterlab_notebook.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    _click_menu(driver, "File", "docmanager:save")
    saved_path = lab["root"] / f"{NOTEBOOK}.ipynb"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:                       # the save reaches the disk through the server
        saved = nbformat.read(saved_path, as_version=4)
        outputs = [o for c in saved.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        if any("image/png" in o.get("data", {}) for o in outputs):
            break
        time.sleep(0.5)
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, f"cells raised: {[(e.ename, e.evalue) for e in errors]}"
    assert any("image/png" in o.get("data", {}) for o in outputs), "the saved notebook has no figure"
    code = [c for c in saved.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "not every code cell ran"
    records = load_records(lab["root"] / "records" / f"{NOTEBOOK}.json")
    assert records["metrics"] and records["figures"]          # the kernel recorded its numbers as under papermill
    shown = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(shown) == len(records["figures"]), "each recorded figure is shown once"


def test_report_html_shows_its_summary_table_and_figures(browser, tmp_path, zsclip_micro):
    results = run_notebooks([NOTEBOOK], tmp_path, overrides={NOTEBOOK: get_paper(NOTEBOOK).test_parameters},
                            progress=False)
    assert results[0].ok, results[0].error
    _, html = write_report(tmp_path)
    driver = browser
    driver.get(html.resolve().as_uri())
    with _screenshot_on_failure(driver, "report"):
        _check_report(driver, tmp_path)


def _check_report(driver, tmp_path: Path) -> None:
    rows = driver.find_elements(By.CSS_SELECTOR, "table.summary tbody tr")
    assert len(rows) == 1
    cells = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[0] == NOTEBOOK and cells[2] == "done", cells
    assert any(word in cells[3] for word in ("reproduced", "inconclusive", "not reproduced")), cells
    n_figures = len(load_records(tmp_path / "records" / f"{NOTEBOOK}.json")["figures"])
    images = driver.find_elements(By.CSS_SELECTOR, f"section#nb-{NOTEBOOK} figure img")
    assert n_figures >= 1 and len(images) == n_figures
    widths = [driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) for img in images]
    assert all(w and w > 100 for w in widths), widths       # decoded, not a broken-image icon
    shot = _artifacts() / "report.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
