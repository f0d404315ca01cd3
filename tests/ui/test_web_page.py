"""The web page in a real headless Chromium (Debian's chromium and chromedriver, driven by Selenium),
against the real service (embedded store, real embedding model, SmolLM2 in-process) on a loopback port."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_service import free_port, live_service

ROOT = Path(__file__).resolve().parents[2]
READ_KEY = "ui-read-key-0123456789abcdef"
ADMIN_KEY = "ui-admin-key-0123456789abcdef"
XSS_TITLE = "<img src=x onerror=alert(1)>"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    message = "the browser tests need Debian's chromium and chromium-driver (apt-get install chromium-driver)"
    if os.environ.get("CI"):
        raise RuntimeError(message)
    pytest.skip(message, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ready  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# Outside the fast tier: a real browser against a real server (about 30 s).
pytestmark = pytest.mark.slow


def write_report(folder: Path) -> None:
    """A small evaluation report in the shape `recommender eval` writes."""
    from recommender.evaluation.report import write_json, write_plot

    results = {
        "popularity": {"ndcg@10": 0.0439, "recall@10": 0.0859, "ndcg@20": 0.05, "recall@20": 0.12},
        "sasrec": {"ndcg@10": 0.0953, "recall@10": 0.1835, "ndcg@20": 0.11, "recall@20": 0.25},
    }
    write_json(folder / "metrics.json", results)
    write_plot(folder / "metrics.png", results, "ML-100k")


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory, gguf_path: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("ui")
    write_report(root / "report")
    port = free_port()
    settings = {
        "RECO_API__KEYS": json.dumps({READ_KEY: ["read"], ADMIN_KEY: ["read", "write", "admin"]}),
        "RECO_EVAL__REPORT_DIR": str(root / "report"),
        "RECO_LLM__BACKEND": "local",
        "RECO_LLM__MODEL": str(gguf_path),
        "RECO_LLM__TIMEOUT_SECONDS": "8",
    }
    with live_service(root, port, "demo", **settings):
        base = f"http://127.0.0.1:{port}"
        hostile = {
            "product_id": "xss-1",
            "title": XSS_TITLE,
            "description": "<script>alert(2)</script> espresso cup",
            "category": "Home > Kitchen",
            "brand": "<b>Bold</b>",
            "price": 3.5,
        }
        assert (
            httpx.post(f"{base}/products", json=hostile, headers={"X-API-Key": ADMIN_KEY}).status_code == 201
        )
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait(driver: webdriver.Chrome, seconds: float = 90) -> WebDriverWait:
    # The page re-renders a view while a condition reads it: an element found a moment before may be gone
    # (seen once in about ten runs after following a link); the condition is asked again.
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RECO_UI_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def enter_key(driver: webdriver.Chrome, key: str) -> None:
    field = wait(driver).until(ready.visibility_of_element_located((By.ID, "key-input")))
    field.send_keys(key)
    field.send_keys(Keys.ENTER)


def search(driver: webdriver.Chrome, query: str, shopper: str = "") -> list:
    form_query = wait(driver).until(ready.visibility_of_element_located((By.ID, "query")))
    form_query.clear()
    form_query.send_keys(query)
    shopper_field = driver.find_element(By.ID, "shopper")
    shopper_field.clear()
    shopper_field.send_keys(shopper)
    previous = driver.find_element(By.ID, "results-summary").text
    driver.find_element(By.CSS_SELECTOR, "#shop-form button[type=submit]").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "results-summary").text not in ("", previous))
    return driver.find_elements(By.CSS_SELECTOR, "#results li.card")


def severe_console_entries(driver: webdriver.Chrome) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_a_shop_team_session_end_to_end(service_url: str, browser: webdriver.Chrome, tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    browser.get(f"{service_url}/ui/")
    enter_key(browser, ADMIN_KEY)

    # Shop: a query for a shopper, with the evidence of each recommendation.
    cards = search(browser, "espresso machine", "demo-cook")
    assert cards and "espresso" in browser.find_element(By.ID, "results").text.lower()
    assert browser.find_elements(By.CSS_SELECTOR, "#results .evidence li")
    assert (
        "query" in browser.find_element(By.ID, "results").text
        or "profile" in browser.find_element(By.ID, "results").text
    )
    browser.save_screenshot(str(shots / "shop.png"))

    # Catalog text is text: the hostile product renders its title literally and runs nothing.
    search(browser, "espresso cup", "")
    hostile = wait(browser).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#results li[data-product-id="xss-1"]')
    )
    assert XSS_TITLE in hostile[0].text and "<b>Bold</b>" in hostile[0].text
    assert not browser.find_elements(By.CSS_SELECTOR, "#results img, #results script, #results b")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018

    # Product page: data, similar products, and the chat streaming over SSE.
    browser.get(f"{service_url}/ui/#/product/kit-004")
    wait(browser).until(lambda d: d.find_element(By.ID, "product-title").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#similar li.card")
    browser.find_element(By.ID, "ask-why").click()
    answer = wait(browser).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#chat-log li.answer[data-source]")
    )
    assert answer.text.strip()
    browser.find_element(By.ID, "ask-cheaper").click()
    wait(browser).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chat-log li.answer[data-source]")) == 2
    )
    alternatives = browser.find_elements(By.CSS_SELECTOR, "#chat-log li.answer:last-child .alternatives a")
    assert alternatives, "a cheaper alternative is listed as a link"
    browser.save_screenshot(str(shots / "chat.png"))
    target_title = alternatives[0].text
    alternatives[0].click()
    wait(browser).until(lambda d: d.find_element(By.ID, "product-title").text == target_title)

    # Imports: an upload with bad rows; the progress reaches 100% and the row errors are listed.
    catalog = tmp_path / "with-bad-rows.csv"
    catalog.write_text(
        "product_id,title,price\nui-1,Trail lantern,12\nui-2,,5\n"
        "ui-3,Camp stove,not-a-price\nui-4,Bivvy bag,30\n"
    )
    browser.get(f"{service_url}/ui/#/imports")
    wait(browser).until(ready.presence_of_element_located((By.ID, "upload-file"))).send_keys(str(catalog))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#job[data-state="succeeded"]'))
    assert browser.find_element(By.ID, "job-progress").get_attribute("value") == "100"
    rows = browser.find_elements(By.CSS_SELECTOR, "#row-errors tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows] == ["3", "4"]
    assert "title" in rows[0].text and "price" in rows[1].text

    # Models and evaluation: what serves, and the last report with its plot.
    browser.get(f"{service_url}/ui/#/models")
    wait(browser).until(lambda d: "No trained model" in d.find_element(By.ID, "model-status").text)
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#report table td"))
    assert "sasrec" in browser.find_element(By.ID, "report").text
    image = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#report .plots img"))
    wait(browser).until(lambda d: d.execute_script("return arguments[0].naturalWidth", image) > 0)

    assert severe_console_entries(browser) == []


def test_api_errors_are_shown_as_the_api_said(service_url: str, browser: webdriver.Chrome) -> None:
    browser.get(f"{service_url}/ui/#/product/no-such-product")
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .error"))
    assert (
        browser.find_element(By.CSS_SELECTOR, "#messages .error").text == "unknown product: 'no-such-product'"
    )
    # A key without the admin scope: the imports page shows the 403 message, not a blank page.
    browser.execute_script("sessionStorage.setItem('reco-api-key', arguments[0])", READ_KEY)
    browser.get(f"{service_url}/ui/#/models")
    browser.refresh()
    wait(browser).until(ready.element_to_be_clickable((By.ID, "train"))).click()
    message = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#messages .error")).text
    assert message == "this API key lacks the 'admin' scope for this operation"
    browser.execute_script("sessionStorage.setItem('reco-api-key', arguments[0])", ADMIN_KEY)


def test_keyboard_only_and_phone_width(service_url: str, browser: webdriver.Chrome) -> None:
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{service_url}/ui/#/shop")
        wait(browser).until(ready.visibility_of_element_located((By.ID, "query")))
        # Keyboard: tab to the search box, type, Enter submits.
        browser.find_element(By.TAG_NAME, "body").click()
        for _ in range(30):
            if browser.switch_to.active_element.get_attribute("id") == "query":
                break
            browser.switch_to.active_element.send_keys(Keys.TAB)
        assert browser.switch_to.active_element.get_attribute("id") == "query"
        browser.switch_to.active_element.send_keys("garden hose", Keys.ENTER)
        wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.card"))
        # Readable at phone width: nothing runs off the side of the screen.
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
    finally:
        browser.set_window_size(1200, 900)


def test_a_merchandiser_pins_a_product_and_reads_an_experiment(
    service_url: str, browser: webdriver.Chrome
) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    experiment = {
        "name": "page-test",
        "placement": "email",
        "arms": {"control": {}, "popular": {"variant": "popular"}},
        "traffic": {"control": 50, "popular": 50},
    }
    assert httpx.post(f"{service_url}/experiments", json=experiment, headers=headers).status_code == 201
    for number in range(6):
        shown = httpx.get(
            f"{service_url}/users/reader-{number}/recommendations",
            params={"placement": "email", "k": 5},
            headers=headers,
        ).json()
        click = {
            "user_id": f"reader-{number}",
            "product_id": shown["items"][0]["product_id"],
            "type": "click",
            "recommendation_id": shown["recommendation_id"],
        }
        httpx.post(f"{service_url}/events", json={"events": [click]}, headers=headers)
    browser.get_log("browser")  # the earlier tests' deliberate 403 and 404 are theirs
    browser.execute_script("sessionStorage.setItem('reco-api-key', arguments[0])", ADMIN_KEY)
    browser.get(f"{service_url}/ui/#/online")
    browser.refresh()
    form = wait(browser).until(ready.visibility_of_element_located((By.ID, "rule-form")))
    form.find_element(By.NAME, "product_id").send_keys("gar-004")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser).until(
        lambda d: "pin gar-004 at 1 on every placement" in d.find_element(By.ID, "rules").text
    )
    # The experiment's report: a row per arm and the plot.
    section = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-experiment='page-test']"))
    assert "control" in section.text and "popular" in section.text and "explicit 6" in section.text
    assert section.find_elements(By.CSS_SELECTOR, "svg.ctr-plot rect")
    # The shop page: the pinned product comes first for any shopper, and says why.
    browser.get(f"{service_url}/ui/#/shop")
    cards = search(browser, "", "demo-runner")
    assert cards[0].get_attribute("data-product-id") == "gar-004"
    assert "placed by pin rule" in cards[0].text and "pinned" in cards[0].text
    # Deleting the rule on the page ends it.
    browser.get(f"{service_url}/ui/#/online")
    button = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#rules li button"))
    button.click()
    wait(browser).until(lambda d: "No rules." in d.find_element(By.ID, "rules").text)
    assert severe_console_entries(browser) == []


def test_the_models_tab_shows_what_training_decided(service_url: str, browser: webdriver.Chrome) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    journeys = [
        ["run-001", "kit-010", "boo-002", "gar-005"],
        ["bea-001", "ele-006", "gar-009", "boo-004"],
        ["ele-005", "bea-008", "run-009", "kit-004"],
    ]
    events = [
        {
            "user_id": f"journey-{user}",
            "product_id": product,
            "type": "view",
            "timestamp": f"2026-01-01T{user % 24:02d}:{step:02d}:00Z",
        }
        for user in range(60)
        for step, product in enumerate(journeys[user % 3] * 2)
    ]
    assert httpx.post(f"{service_url}/events", json={"events": events}, headers=headers).status_code == 202
    assert httpx.post(f"{service_url}/models/sequence/train", headers=headers).status_code == 202
    browser.get(f"{service_url}/ui/#/models")
    browser.execute_script("sessionStorage.setItem('reco-api-key', arguments[0])", ADMIN_KEY)
    browser.refresh()

    def trained(driver: webdriver.Chrome) -> bool:
        if "Version 1" in driver.find_element(By.ID, "model-status").text:
            return True
        driver.refresh()
        return False

    WebDriverWait(browser, 240, poll_frequency=2).until(trained)
    status = browser.find_element(By.ID, "model-status")
    training = httpx.get(f"{service_url}/models/sequence", headers=headers).json()["training"]
    kept = "the moving average of the weights" if training["weights"] == "averaged" else "the weights"
    stop = browser.find_element(By.ID, "training-stop").text
    assert f"{kept} of epoch {training['best_epoch']} serve" in stop
    # The trained weights' curve and their moving average's, each validated at every check.
    assert len(status.find_elements(By.CSS_SELECTOR, "svg#validation-curve polyline")) == 2
    assert len(training["averaged_curve"]) == len(training["validation_curve"])
    gate_rows = status.find_elements(By.CSS_SELECTOR, "#ranker-gate tbody tr")
    gate = httpx.get(f"{service_url}/models/sequence", headers=headers).json()["ranker_validation"]
    names = [row.find_elements(By.TAG_NAME, "td")[0].text for row in gate_rows]
    # The learned ranker's objectives, rank fusion, then each source's own order, as the API reports them.
    assert names[len(gate["objectives"])] == "rank fusion"
    assert names[len(gate["objectives"]) + 1 :] == [
        f"{source} alone (its own order)" for source in gate["sources"]
    ]
    serving = [
        row.find_elements(By.TAG_NAME, "td")[0].text for row in gate_rows if row.text.endswith("serves")
    ]
    assert len(serving) == 1  # exactly one ranking serves: the one the gate chose
    # 60 users: the gate judges those the sequence model's epoch was not chosen on, as the API counts them.
    assert gate["judges_apart"] and gate["users"] < gate["trained_users"]
    assert browser.find_element(By.ID, "ranker-gate-users").text.startswith(
        "Ranker gate, validation NDCG@10 out of fold: the learned ranker against rank fusion on all "
        f"{gate['trained_users']} users, each source's own order on {gate['users']} of them, those the "
        "sequence model was not chosen on: "
    )
    fusion_cells = [cell.text for cell in gate_rows[len(gate["objectives"])].find_elements(By.TAG_NAME, "td")]
    # Fusion on every user (against the learned ranker) and on the judging users (against the sources).
    assert fusion_cells[1:3] == [f"{gate['fusion_ndcg_at_10']:.4f}", f"{gate['judged']['fusion']:.4f}"]
    expected = {"learned": f"learned ranker ({gate['objective']})", "fusion": "rank fusion"}
    assert serving[0] == expected.get(gate["serves"], f"{gate['serves']} alone (its own order)")
    stages = [
        row.find_elements(By.TAG_NAME, "td")
        for row in status.find_elements(By.CSS_SELECTOR, "#stage-gate tbody tr")
    ]
    assert stages[0][0].text == "new product places"
    # The configured LLM's re-rank was measured on its own sample of validation users (one call each):
    # the row names how many and how many re-ranks fell back, as the API reports them.
    figures = httpx.get(f"{service_url}/models/sequence", headers=headers).json()["stages"]["llm_rerank"]
    llm = next(cells for cells in stages if cells[0].text.startswith("llm rerank"))
    assert llm[0].text == f"llm rerank ({figures['users']} users, {figures['fell_back']} fell back)"
    assert figures["users"] >= 10 and llm[1].text == f"{figures['with_ndcg_at_10']:.4f}"
    assert llm[4].text == ("yes" if figures["served"] else "no: lowers validation NDCG@10")
    # The new-arrivals score training chose, and the text weight's own gate, as the API reports them.
    tower = httpx.get(f"{service_url}/models/sequence", headers=headers).json()["new_arrivals"]
    assert tower["text_gain"] is not None and tower["text_gain_se"] > 0
    verdict = "serves" if tower["text_weight"] > 0 else "not beyond noise, not served"
    assert browser.find_element(By.ID, "new-arrivals-choice").text.endswith(
        f"(users it was not fitted on): {verdict}."
    )
    assert (
        f"{tower['text_gain']:+.4f} ± {tower['text_gain_se']:.4f}"
        in browser.find_element(By.ID, "new-arrivals-choice").text
    )
    # No encoder was fine-tuned: the configured text model serves, and the button to start one is there.
    encoder = browser.find_element(By.ID, "encoder-status").text
    assert "The configured model serves: all-MiniLM-L6-v2" in encoder
    assert browser.find_element(By.ID, "train-encoder").is_displayed()
    assert severe_console_entries(browser) == []


def test_the_models_tab_shows_an_encoder_the_served_lists_withdrew(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """The shop's encoder through the real training job (the sequence model, fine-tuning, then the served
    lists on validation users with and without it, which here must gain a whole NDCG point and so withdraw
    it), then a server over the same folders: its page shows the run and the withdrawal with the figures
    `GET /models/encoder` reports, and the configured model serving again."""
    from recommender.service import build_service, switch_encoder
    from recommender.training_job import run_training_job
    from tests.conftest import import_demo_catalog
    from tests.recommender.training.test_encoder_served_gate import BASE_MODEL, gate_settings
    from tests.shop_histories import bundle_histories

    settings = gate_settings(tmp_path, min_gain=1.0)
    service = build_service(settings)
    import_demo_catalog(service)
    service.events.add(bundle_histories(150))
    run_training_job(service, lambda old: switch_encoder(old, settings)).service.close()

    port = free_port()
    keys = json.dumps({ADMIN_KEY: ["read", "write", "admin"]})
    write_report(tmp_path / "report")  # the tab shows the last evaluation too
    environment = {"RECO_EVAL__REPORT_DIR": str(tmp_path / "report"), "RECO_EMBEDDING__BACKEND": "torch"}
    with live_service(tmp_path, port, "serve", RECO_API__KEYS=keys, **environment):
        base = f"http://127.0.0.1:{port}"
        shown = httpx.get(f"{base}/models/encoder", headers={"X-API-Key": ADMIN_KEY}).json()
        latest, gate = shown["latest"], shown["latest"]["served_gate"]
        assert shown["version"] is None and not latest["published"] and gate["served"] is False
        browser.get(f"{base}/ui/#/models")
        browser.execute_script("sessionStorage.setItem('reco-api-key', arguments[0])", ADMIN_KEY)
        browser.refresh()
        line = wait(browser).until(lambda d: d.find_element(By.ID, "encoder-served-gate").text)
        assert line == (
            f"Served lists on {gate['users']} validation users, NDCG@10: {gate['without_ndcg_at_10']:.4f} "
            f"before, {gate['with_ndcg_at_10']:.4f} with it ({'+' if gate['difference'] >= 0 else ''}"
            f"{gate['difference']:.4f} ± {gate['standard_error']:.4f}): withdrawn."
        )
        ranking = browser.find_element(By.ID, "encoder-served-ranking").text
        assert ranking == (
            f"Ranking judged: {gate['ranking']['without']} before, {gate['ranking']['with']} with it."
        )
        run = browser.find_element(By.ID, "encoder-run").text
        assert run.startswith(f"Newest run, v{latest['version']}: not published: the served lists fell short")
        assert (
            f"The configured model serves: {BASE_MODEL}" in browser.find_element(By.ID, "encoder-status").text
        )
        assert severe_console_entries(browser) == []
