"""The playground page in headless Chromium, on the running stack, as a user meets it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.web_build import artifact, browser, web_build  # noqa: F401  (fixtures)

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class Visit:
    """One browser page on the playground, recording every request and console error."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.requests: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        page.on("pageerror", lambda error: self.problems.append(str(error)))

    def foreign_requests(self) -> list[str]:
        origin = urlsplit(self.base)[:2]
        return [url for url in self.requests if urlsplit(url)[:2] != origin and not url.startswith("data:")]

    def status(self) -> str:
        return self.page.get_attribute("#job-status", "data-status") or ""


@pytest.fixture
def visit(stack: Any, web_build: None, browser: Any) -> Iterator[Visit]:
    """The playground at the API's public URL (where result image URLs point too)."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield Visit(page, stack.urls["public_api"])
    finally:
        context.close()


def test_generate_from_the_form(visit: Visit, standin: Any, image_server: Any, api: Any) -> None:
    standin.configure(latency_ms=1500)
    page = visit.page
    first = page.goto(f"{visit.base}/")
    assert first is not None and first.request.redirected_from is not None
    assert first.request.redirected_from.response().status == 302
    assert page.url == f"{visit.base}/playground"
    page.wait_for_selector("#health[data-state=ok]")

    page.fill("#prompt", "Un phare breton sous un ciel d'orage")
    page.fill("#input_image_url", image_server.photo_url)
    page.check("input[name=num_images][value='2']", force=True)
    page.check("input[name=size][value='512x512']", force=True)
    page.check("input[name=format][value=WEBP]", force=True)
    page.select_option("#style", "artistic")
    page.select_option("#quality", "ultra")
    page.evaluate(
        """() => {
            window.seenProgress = [];
            const bar = document.getElementById("progress");
            new MutationObserver(() => window.seenProgress.push(Number(bar.getAttribute("aria-valuenow"))))
                .observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
        }"""
    )
    page.click("#submit")
    page.wait_for_selector("#job-status[data-status=GENERATING]")
    assert page.is_visible("#cancel")
    page.wait_for_selector("#job-status[data-status=COMPLETED]", timeout=60_000)

    progress = page.evaluate("window.seenProgress")
    assert progress == sorted(progress) and progress[-1] == 100, progress
    assert any(0 < value < 100 for value in progress), progress
    assert len(set(progress)) >= 3, progress
    assert page.inner_text("#progress-text") == "100 %"

    page.wait_for_function(
        "() => [...document.querySelectorAll('#grid img')].every((img) => img.complete && img.naturalWidth > 0)"
    )
    sizes = page.eval_on_selector_all("#grid img", "imgs => imgs.map((img) => [img.naturalWidth, img.naturalHeight])")
    assert sizes == [[512, 512], [512, 512]]
    job_id = page.inner_text("#job-id")
    result = api.get(f"/api/images/result/{job_id}").json()
    links = page.eval_on_selector_all("#grid a.download", "links => links.map((a) => [a.href, a.download])")
    assert links == [[image["url"], f"image_{n}.webp"] for n, image in enumerate(result["images"], 1)]
    card = page.inner_text("#grid li:first-child")
    for text in ("512 × 512", "WEBP", result["metadata"]["model_name"], "Ko"):
        assert text in card, card
    assert not page.is_visible("#cancel")

    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=artifact("playground-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=artifact("playground-phone.png"), full_page=True)
    assert visit.foreign_requests() == []
    assert visit.problems == []


def test_refused_fields_show_the_api_messages(visit: Visit) -> None:
    page = visit.page
    page.emulate_media(color_scheme="dark")
    page.goto(f"{visit.base}/playground")
    page.fill("#input_image_url", "ftp://exemple.fr/photo.png")
    page.click("#submit")
    page.wait_for_selector("#error-prompt:not(:empty)")
    assert page.inner_text("#error-prompt") == "Prompt requis"
    assert page.inner_text("#error-input_image_url") == "input_image_url doit être une URL http(s) valide"
    assert page.is_hidden("#job") and page.is_visible("#empty")
    page.screenshot(path=artifact("playground-errors-dark.png"))
    page.fill("#prompt", "Maintenant valide")
    page.fill("#input_image_url", "")
    page.click("#submit")
    page.wait_for_selector("#job-status[data-status=COMPLETED]", timeout=60_000)
    assert page.inner_text("#error-prompt") == ""
    assert visit.foreign_requests() == []


def test_cancel_while_running(visit: Visit, standin: Any, api: Any) -> None:
    standin.configure(latency_ms=4000)
    page = visit.page
    page.goto(f"{visit.base}/playground")
    page.fill("#prompt", "Trop long, on annule")
    page.check("input[name=num_images][value='4']", force=True)
    page.click("#submit")
    page.wait_for_selector("#job-status[data-status=GENERATING]")
    page.set_viewport_size(PHONE)
    page.screenshot(path=artifact("playground-running-phone.png"))
    page.click("#cancel")
    page.wait_for_selector("#job-status[data-status=CANCELLED]")
    job_id = page.inner_text("#job-id")
    assert api.get(f"/api/images/status/{job_id}").json()["status"] == "CANCELLED"
    assert page.eval_on_selector_all("#grid li", "items => items.length") == 0
    assert page.is_enabled("#submit") and not page.is_visible("#cancel")
    assert visit.foreign_requests() == []


def test_a_failed_job_shows_its_french_error(visit: Visit, standin: Any) -> None:
    standin.configure(faults=[{"kind": "safety", "match": None, "times": None}])
    page = visit.page
    page.goto(f"{visit.base}/playground")
    page.fill("#prompt", "Refusé par le modèle")
    page.click("#submit")
    page.wait_for_selector("#job-status[data-status=FAILED]")
    assert page.inner_text("#job-status") == "ÉCHEC"  # CSS uppercases "Échec"
    assert page.inner_text("#job-message").startswith("Prompt bloqué par les filtres de sécurité de Gemini")
    assert page.eval_on_selector_all("#grid li", "items => items.length") == 0
    assert page.is_enabled("#submit")


def test_api_key_is_kept_and_a_bad_one_is_shown_next_to_it(visit: Visit) -> None:
    page = visit.page
    page.goto(f"{visit.base}/playground")
    page.click("#access summary")
    page.fill("#api_key", "igk_not_a_real_key")
    page.dispatch_event("#api_key", "change")
    page.fill("#prompt", "Avec une mauvaise clé")
    page.click("#submit")
    page.wait_for_selector("#error-api_key:not(:empty)")
    assert page.inner_text("#error-api_key") == "Clé API invalide"
    page.reload()
    assert page.input_value("#api_key") == "igk_not_a_real_key"
    page.evaluate("localStorage.clear()")


def test_docs_render_every_route(visit: Visit, api: Any) -> None:
    page = visit.page
    page.goto(f"{visit.base}/docs")
    page.wait_for_selector(".opblock-summary-path")
    shown = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map((block) => [
            block.querySelector(".opblock-summary-method").textContent.trim().toLowerCase(),
            block.querySelector(".opblock-summary-path").textContent.replace(/\\u200b/g, "").trim(),
        ])""",
    )
    document = api.get("/openapi.json").json()
    routes = [[method, path] for path, methods in document["paths"].items() for method in methods]
    assert sorted(shown) == sorted(routes)
    page.screenshot(path=artifact("docs-desktop.png"))
    assert visit.foreign_requests() == []
    assert visit.problems == []
