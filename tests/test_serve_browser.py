"""The upload page and the API docs in headless Debian chromium, with no request leaving the server.

Upload: choose a generated clip, press Tag, see the tags; with Chinese tags, the glyphs are drawn
with the CJK font subset the server sends (not a system font). Docs: Swagger UI and ReDoc render
from files shipped in the installed packages.

Drives chromium over the DevTools pipe with test_report's small client; the server is uvicorn on a
loopback port in this process, stopped by the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from adtag.serve import ServeConfig, create_app  # noqa: E402
from tests.test_report import DevTools, _chromium  # noqa: E402
from tests.test_serve import ZH_TAGS, LiveServer, build_video_model, sale_clip  # noqa: E402

AFTER_UPLOAD = """new Promise((resolve, reject) => {
  const t0 = Date.now();
  (function poll() {
    const status = document.getElementById('status');
    if (status.textContent === 'done' || status.className === 'error') {
      const imgs = [...document.querySelectorAll('#thumbs img')];
      Promise.all(imgs.map(i => i.decode().catch(() => null))).then(() => resolve({
        status: status.textContent,
        model: document.getElementById('model').textContent,
        tags: [...document.querySelectorAll('#tags .name')].map(e => e.textContent),
        scores: [...document.querySelectorAll('#tags .score')].map(e => Number(e.textContent)),
        bars: [...document.querySelectorAll('#tags .bar span')].map(e => e.getBoundingClientRect().width),
        branches: [...document.querySelectorAll('#tags .branches')].map(e => e.textContent),
        thumbs: imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight})),
        text: document.getElementById('text').innerText,
        hidden: document.getElementById('result').hidden,
      }));
    } else if (Date.now() - t0 > 60000) { reject(new Error('no answer: ' + status.textContent)); }
    else { setTimeout(poll, 100); }
  })();
})"""


def test_upload_page_tags_a_video_in_chromium(tmp_path_factory: pytest.TempPathFactory) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (scripts/install_system_deps.sh installs it)")
    _, model_dir = build_video_model(tmp_path_factory.mktemp("video_model"))
    clip = sale_clip(tmp_path_factory.mktemp("clip"))
    app = create_app(ServeConfig(model_dir, tmp_dir=tmp_path_factory.mktemp("serve_tmp")))
    with LiveServer(app) as server:
        tools = DevTools(binary, tmp_path_factory.mktemp("profile"))
        try:
            target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "DOM", "Network"):
                tools.call(f"{domain}.enable", session=session)
            tools.call("Page.navigate", {"url": server.url + "/"}, session=session)
            tools.wait_event("Page.loadEventFired")
            root = tools.call("DOM.getDocument", session=session)["root"]["nodeId"]
            node = tools.call("DOM.querySelector", {"nodeId": root, "selector": "#video"}, session=session)["nodeId"]
            tools.call("DOM.setFileInputFiles", {"files": [str(clip)], "nodeId": node}, session=session)
            tools.call("Runtime.evaluate", {"expression": "document.getElementById('go').click()"}, session=session)
            facts = tools.call(
                "Runtime.evaluate",
                {"expression": AFTER_UPLOAD, "awaitPromise": True, "returnByValue": True},
                session=session,
                timeout=90,
            )["result"]["value"]
        finally:
            tools.close()
    errors = tools.console_errors()
    assert errors == [], f"console errors: {errors}"
    requested = {
        ev["params"]["request"]["url"] for ev in tools.events if ev.get("method") == "Network.requestWillBeSent"
    }
    assert all(u.startswith((server.url, "data:")) for u in requested), requested  # nothing from outside
    assert facts["status"] == "done" and facts["hidden"] is False
    assert facts["model"] == "4 tags · video uploads on"
    assert facts["tags"][0] == "sale" and len(facts["tags"]) == 4
    assert facts["scores"] == sorted(facts["scores"], reverse=True)
    assert facts["bars"][0] > facts["bars"][-1] > 0  # score bars drawn to scale
    assert all(b for b in facts["branches"])  # the branches that carried each tag
    assert len(facts["thumbs"]) == 6 and all(t["w"] > 0 and t["h"] == 72 for t in facts["thumbs"])
    assert "ocr" in facts["text"] and "SALE" in facts["text"]
    assert not Path(app.state.service.tmp_dir).exists()  # the server removed its folder on shutdown


def _session(tools: DevTools, url: str) -> str:
    target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "DOM", "Network", "CSS"):
        tools.call(f"{domain}.enable", session=session)
    tools.call("Page.navigate", {"url": url}, session=session)
    tools.wait_event("Page.loadEventFired")
    return session


def _evaluate(tools: DevTools, session: str, expression: str, timeout: float = 90) -> dict:
    reply = tools.call(
        "Runtime.evaluate",
        {"expression": expression, "awaitPromise": True, "returnByValue": True},
        session=session,
        timeout=timeout,
    )
    assert "exceptionDetails" not in reply, reply
    return reply["result"]["value"]


def _requested(tools: DevTools) -> set[str]:
    return {ev["params"]["request"]["url"] for ev in tools.events if ev.get("method") == "Network.requestWillBeSent"}


FONT_READY = """new Promise((resolve, reject) => {
  const t0 = Date.now();
  (function poll() {
    const tags = [...document.querySelectorAll('#tags .name')].map(e => e.textContent);
    const chars = Number(document.body.dataset.cjkChars || 0);
    const need = new Set(tags.join('').split('').filter(c => c.codePointAt(0) >= 0x2e80)).size;
    if (tags.length && chars >= need) {
      document.fonts.ready.then(() => resolve({
        tags, chars, status: document.getElementById('status').textContent,
        loaded: document.fonts.check('16px "adtag-cjk"', tags[0]),
      }));
    } else if (Date.now() - t0 > 90000) { reject(new Error('no font: ' + chars + ' ' + tags)); }
    else { setTimeout(poll, 100); }
  })();
})"""


def test_upload_page_draws_chinese_tags_with_the_embedded_font(tmp_path_factory: pytest.TempPathFactory) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (scripts/install_system_deps.sh installs it)")
    _, model_dir = build_video_model(tmp_path_factory.mktemp("video_model"), chinese=True)
    clip = sale_clip(tmp_path_factory.mktemp("clip"))
    app = create_app(ServeConfig(model_dir, tmp_dir=tmp_path_factory.mktemp("serve_tmp")))
    with LiveServer(app) as server:
        tools = DevTools(binary, tmp_path_factory.mktemp("profile"))
        try:
            session = _session(tools, server.url + "/")
            root = tools.call("DOM.getDocument", session=session)["root"]["nodeId"]
            node = tools.call("DOM.querySelector", {"nodeId": root, "selector": "#video"}, session=session)["nodeId"]
            tools.call("DOM.setFileInputFiles", {"files": [str(clip)], "nodeId": node}, session=session)
            tools.call("Runtime.evaluate", {"expression": "document.getElementById('go').click()"}, session=session)
            facts = _evaluate(tools, session, FONT_READY, timeout=120)
            root = tools.call("DOM.getDocument", session=session)["root"]["nodeId"]
            tag = tools.call("DOM.querySelector", {"nodeId": root, "selector": "#tags .name"}, session=session)
            fonts = tools.call("CSS.getPlatformFontsForNode", {"nodeId": tag["nodeId"]}, session=session)["fonts"]
        finally:
            tools.close()
    assert tools.console_errors() == []
    assert all(u.startswith((server.url, "data:")) for u in _requested(tools)), _requested(tools)
    assert facts["status"] == "done" and facts["tags"][0] == ZH_TAGS["sale"], facts
    assert set(facts["tags"]) == set(ZH_TAGS.values()) and facts["loaded"] is True
    # Every glyph of the first tag ("促销/打折") comes from the web font the page loaded, except the
    # Latin slash, which keeps the interface font.
    custom = [f for f in fonts if f["isCustomFont"]]
    assert custom and sum(f["glyphCount"] for f in custom) == 4, fonts


DOCS_RENDERED = """new Promise((resolve, reject) => {
  const t0 = Date.now();
  (function poll() {
    const swagger = document.querySelectorAll('.swagger-ui .opblock').length;
    const redoc = document.querySelectorAll('[data-section-id^="operation/"]').length;
    if (swagger + redoc >= 4) {  // then a second for late images (ReDoc's logo) to be requested
      setTimeout(() => resolve({swagger, redoc, title: document.title,
                                 text: document.body.innerText.slice(0, 20000)}), 1000);
    } else if (Date.now() - t0 > 60000) { reject(new Error('docs did not render')); }
    else { setTimeout(poll, 100); }
  })();
})"""


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_render_offline(page: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (scripts/install_system_deps.sh installs it)")
    _, model_dir = build_video_model(tmp_path_factory.mktemp("video_model"))
    app = create_app(ServeConfig(model_dir, tmp_dir=tmp_path_factory.mktemp("serve_tmp"), warm=False))
    with LiveServer(app) as server:
        tools = DevTools(binary, tmp_path_factory.mktemp("profile"))
        try:
            session = _session(tools, server.url + page)
            facts = _evaluate(tools, session, DOCS_RENDERED)
        finally:
            tools.close()
    requested = _requested(tools)
    outside = [u for u in requested if not u.startswith((server.url, "data:", "blob:"))]
    assert requested and outside == [], outside
    assert tools.console_errors() == []
    assert "/v1/tag/batch" in facts["text"] and facts["title"] == "adtag API"
    assert max(facts["swagger"], facts["redoc"]) >= 4  # one block per operation
