"""The page at "/" in a real browser: headless Debian Chromium driven by Selenium against a real server. Beats are
pasted (typed into the text area) or uploaded (file input), and must come back plotted and labelled on the page
with the predictor's own labels and probabilities.

Needs ``chromium`` and ``chromium-driver`` (Debian packages; ``.ci/run`` installs them) and ``selenium`` (the
``dev`` extra). Skipped only when no Chromium binary exists.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ecgcnn.data.beats import resample_beats
from ecgcnn.runtimes import load_predictor
from tests.serve.test_serve import MODEL, Server

CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1280,1000"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium "
                                                          "chromium-driver); the browser test needs one")]


@pytest.fixture(scope="module")
def server():
    srv = Server(max_beats=50, max_bytes=500_000)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        pytest.fail("Chromium is installed but chromedriver is not: apt-get install chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    except WebDriverException as exc:
        pytest.fail(f"Chromium did not start under chromedriver: {exc.msg}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(MODEL)


def _csv(beats: np.ndarray, header: bool = False) -> str:
    rows = [",".join(f"{v:.6g}" for v in row) for row in np.asarray(beats, dtype=np.float64).tolist()]
    return "\n".join(([",".join(f"t{i}" for i in range(len(beats[0])))] if header else []) + rows) + "\n"


def _open(browser, server):
    browser.get(server.base + "/")
    WebDriverWait(browser, 30).until(lambda d: "edge" in d.find_element(By.ID, "model-info").text)


def _figures(browser, count: int):
    WebDriverWait(browser, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "figure.beat")) == count
        or d.find_element(By.ID, "error").is_displayed())
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text
    return browser.find_elements(By.CSS_SELECTOR, "figure.beat")


def _check_labelled(figures, beats_used: np.ndarray, predictor) -> None:
    """Each figure: its beat plotted (one point per sample), its predicted label and probability shown."""
    probabilities = predictor.predict_proba(beats_used)
    assert len(figures) == len(beats_used)
    for i, (figure, probs) in enumerate(zip(figures, probabilities, strict=True)):
        k = int(probs.argmax())
        label, name = predictor.labels[k], predictor.class_names[k]
        assert figure.get_attribute("data-label") == str(label)
        assert float(figure.get_attribute("data-probability")) == pytest.approx(float(probs[k]), abs=1e-6)
        caption = figure.find_element(By.TAG_NAME, "figcaption").text
        assert f"Beat {i + 1}: {name} (label {label})" in caption
        assert f"p = {probs[k]:.3f}" in caption
        points = figure.find_element(By.TAG_NAME, "polyline").get_attribute("points").split()
        assert len(points) > 1


def _beats(dataset, per_class: int, offset: int = 0) -> np.ndarray:
    picks = np.concatenate([np.flatnonzero(dataset.index_test == c)[offset:offset + per_class] for c in range(5)])
    return dataset.x_test[picks]


def test_pasted_beats_are_plotted_and_labelled(browser, server, predictor, dataset):
    beats = _beats(dataset, 1)[:3]
    _open(browser, server)
    area = browser.find_element(By.ID, "csv")
    area.clear()
    area.send_keys(_csv(beats, header=True))
    browser.find_element(By.ID, "classify").click()
    figures = _figures(browser, len(beats))
    # The page shows what the server computed from the same text (6 significant digits, as typed).
    typed = np.array([[float(f"{v:.6g}") for v in row] for row in beats.tolist()])
    _check_labelled(figures, typed, predictor)
    assert len(figures[0].find_element(By.TAG_NAME, "polyline").get_attribute("points").split()) == 140
    assert "3 beats classified" in browser.find_element(By.ID, "status").text


def test_uploaded_file_is_plotted_and_labelled(browser, server, predictor, dataset, tmp_path):
    beats = _beats(dataset, 1, offset=1)
    path = tmp_path / "upload.csv"
    path.write_text(_csv(beats))
    _open(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(path))
    figures = _figures(browser, len(beats))
    typed = np.array([[float(f"{v:.6g}") for v in row] for row in beats.tolist()])
    _check_labelled(figures, typed, predictor)


def test_resample_checkbox(browser, server, predictor, dataset):
    short = resample_beats(_beats(dataset, 1, offset=2)[:2], 70)
    _open(browser, server)
    browser.execute_script("document.getElementById('csv').value = arguments[0];", _csv(short))
    browser.find_element(By.ID, "resample").click()
    browser.find_element(By.ID, "classify").click()
    figures = _figures(browser, 2)
    typed = np.array([[float(f"{v:.6g}") for v in row] for row in short.tolist()])
    _check_labelled(figures, resample_beats(typed, 140), predictor)


def test_server_error_is_shown(browser, server):
    _open(browser, server)
    browser.execute_script("document.getElementById('csv').value = arguments[0];", "1,2,3\n4,5,6\n")
    browser.find_element(By.ID, "classify").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "expected 140 values" in browser.find_element(By.ID, "error").text
    assert browser.find_elements(By.CSS_SELECTOR, "figure.beat") == []


def test_example_button(browser, server):
    _open(browser, server)
    browser.find_element(By.ID, "example").click()
    figures = _figures(browser, 5)
    assert [f.get_attribute("data-index") for f in figures] == ["1", "2", "3", "4", "5"]
