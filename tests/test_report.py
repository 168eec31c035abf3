"""report.html: structure, escaping, self-containment, and a real headless Chromium render.

The browser check speaks the DevTools protocol over ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON), so it needs no websocket package: it loads the
page, waits for fonts and images, collects console errors, exceptions and log errors, and
asks the page what it shows.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from adtag.report.curves import pooled_pr_curve
from adtag.report.html import render_report
from adtag.report.thumbnails import thumbnail_strip

TAGS = ["室内/indoor", "a<b & c", "促销/promotion", "动画/animation", "<script>alert(1)</script>", "夜景/night"]


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(buf, format="JPEG")
    return buf.getvalue()


def _inputs() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    truth = {f"clip{i}": [TAGS[i % len(TAGS)], TAGS[(i + 2) % len(TAGS)]] for i in range(6)}
    predictions = {
        cid: sorted(((t, float(rng.random() + (0.6 if t in tags else 0))) for t in TAGS), key=lambda x: -x[1])
        for cid, tags in truth.items()
    }
    gallery = [
        {
            "id": cid,
            # Arrays for some clips, ready JPEG bytes for others: both are accepted.
            "thumbnails": (
                [rng.integers(0, 255, (36, 64, 3), dtype=np.uint8) for _ in range(3)]
                if i % 2 == 0
                else [_jpeg((200, 40, 40)), _jpeg((40, 200, 40))]
            ),
            "true": truth[cid],
            "pred": predictions[cid][:4],
        }
        for i, cid in enumerate(truth)
    ]
    ablation = {
        "dataset": "demo <synthetic> & co",
        "n_items": 6,
        "n_tags": len(TAGS),
        "folds": 3,
        "tables": {
            "single": [
                {"name": "frames", "gap": 0.61, "hit1": 0.7, "kind": "visual"},
                {"name": "audio", "gap": 0.52, "hit1": 0.5},
                {"name": "ocr", "gap": 0.66, "hit1": 0.6},
            ],
            "combinations": [
                {"name": "frames+audio", "gap": 0.7, "hit1": 0.75},
                {"name": "frames+audio+ocr", "gap": 0.78, "hit1": 0.8},
            ],
            "fusion": [
                {"name": "stack", "gap": 0.81, "hit1": 0.85},
                {"name": "mean", "gap": 0.74, "hit1": 0.8},
            ],
        },
        # adtag ablate writes None for a tag that no held-out clip has.
        "per_tag_ap": {t: (None if i == 1 else float(rng.random())) for i, t in enumerate(TAGS)},
    }
    return {"ablation": ablation, "predictions": predictions, "truth": truth, "gallery": gallery}


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    render_report(path, title="Demo <report>", notes=["speech: espeak-ng & captions"], held_out=9, **_inputs())
    return path


def test_report_structure_and_self_containment(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    parsed = _Collect()
    parsed.feed(page)
    assert [t for t, _ in parsed.tags].count("table") == 4  # three ablation tables + per-tag AP
    imgs = [a for t, a in parsed.tags if t == "img"]
    # 2 bar charts + PR curve + thumbnails (3 per even clip, 2 per odd clip).
    assert len(imgs) == 3 + 3 * 3 + 2 * 3
    assert all((a.get("src") or "").startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for a in imgs)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)
    # Hostile strings are escaped, never markup.
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&lt;b &amp; c" in page
    text = "".join(parsed.text)
    assert "demo <synthetic> & co" in text and "室内/indoor" in text
    # The best row of each table is highlighted.
    # (long combination names carry <wbr> break hints after each "+")
    best = [b.replace("<wbr>", "") for b in re.findall(r'<tr class="best"><td>((?:[^<]|<wbr>)*)</td>', page)]
    assert best == ["ocr", "frames+audio+ocr", "stack"]
    # A tag without a score is listed last, with a dash, and left out of the mean.
    rows = re.findall(r'<tr><td>([^<]*)</td><td class="num">([^<]*)</td><td class="bar">', page)
    assert rows[-1] == ("a&lt;b &amp; c", "&ndash;") and len(rows) == len(TAGS)
    assert f"mean AP over {len(TAGS) - 1} scored tags" in page
    # A CJK font subset is embedded, so Chinese renders without system fonts.
    assert "@font-face" in page and "data:font/otf;base64," in page


def test_report_says_where_each_figure_comes_from(report: Path) -> None:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", report.read_text(encoding="utf-8")))
    # The per-tag mean names its scores and cut-off; the header names both kinds of folds.
    assert "default stacker, outer 3-fold cross-validation over all 6 items; every score counts" in text
    assert "ablation by outer 3-fold cross-validation" in text
    # The gallery says how many of the held-out clips it shows, and what its chip colours mean.
    assert "Showing 6 of 9 held-out clips." in text
    assert all(word in text for word in ("green a true tag", "red a true tag it missed", "grey a guess"))


def test_pooled_pr_curve_counts_missing_positives() -> None:
    preds = {"a": [("x", 0.9), ("y", 0.8)], "b": [("x", 0.7)]}
    truth = {"a": ["x", "z"], "b": ["y"]}  # z and b's y are never predicted
    curve = pooled_pr_curve(preds, truth)
    assert curve.n_positives == 3 and curve.n_items == 2
    assert curve.average_precision == pytest.approx(1 / 3)
    assert curve.recall[-1] == pytest.approx(1 / 3)


def test_thumbnail_strip_from_a_real_video(tmp_path: Path) -> None:
    from adtag_demo.encode import write_mp4

    path = tmp_path / "v.mp4"
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)

    def frame(i: int) -> np.ndarray:
        return np.broadcast_to(colours[i * 4 // 40], (90, 160, 3)).copy()

    write_mp4(path, frame, 40, 10, 160, 90, None, 16000)
    strip = thumbnail_strip(path, n=4, height=36)
    assert len(strip) == 4
    assert all(s.shape == (36, 64, 3) and s.dtype == np.uint8 for s in strip)
    # Evenly spaced: the i-th thumbnail shows the i-th colour segment.
    for s, c in zip(strip, colours, strict=True):
        assert np.abs(s.reshape(-1, 3).mean(0) - c).max() < 40


# ---- the real browser -------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, user_data_dir: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:
            # Chromium reads commands from fd 3 and writes replies to fd 4; dup first so that
            # a pipe end already sitting on 3 or 4 is not clobbered.
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),  # kept open past preexec_fn, which puts the pipes there
            preexec_fn=wire_fds,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while True:
            ev = self._read_message(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def console_errors(self) -> list[dict]:
        """Exceptions, console.error/assert calls and error log entries seen so far."""
        return [
            ev
            for ev in self.events
            if ev.get("method") == "Runtime.exceptionThrown"
            or (ev.get("method") == "Runtime.consoleAPICalled" and ev["params"].get("type") in ("error", "assert"))
            or (ev.get("method") == "Log.entryAdded" and ev["params"]["entry"].get("level") == "error")
        ]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


PAGE_FACTS = """(async () => {
  await document.fonts.ready;
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return {
    tables: document.querySelectorAll('table').length,
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    best: [...document.querySelectorAll('tr.best td:first-child')].map(td => td.textContent),
    images: imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width})),
    cjk: document.fonts.check('16px "adtag-cjk"', '室内'),
    hostile: document.querySelectorAll('script').length,
    text: document.body.innerText,
  };
})()"""


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (scripts/install_system_deps.sh installs it)")
    tools = DevTools(binary, tmp_path / "profile")
    try:
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "DOM", "CSS"):
            tools.call(f"{domain}.enable", session=session)
        tools.call("Page.navigate", {"url": report.as_uri()}, session=session)
        tools.wait_event("Page.loadEventFired")
        facts = tools.call(
            "Runtime.evaluate",
            {"expression": PAGE_FACTS, "awaitPromise": True, "returnByValue": True},
            session=session,
        )["result"]["value"]
        shot = tools.call("Page.captureScreenshot", {"format": "png"}, session=session)
        # Chinese must be drawn with the embedded font, not as missing-glyph boxes of a system
        # font: check the first CJK cells, which are laid out while the font is still loading.
        root = tools.call("DOM.getDocument", session=session)["root"]["nodeId"]
        fonts_used = {}
        for selector in ("table.ap tbody td", ".gallery .chip"):
            node = tools.call("DOM.querySelector", {"nodeId": root, "selector": selector}, session=session)["nodeId"]
            fonts_used[selector] = tools.call("CSS.getPlatformFontsForNode", {"nodeId": node}, session=session)["fonts"]
    finally:
        tools.close()
    errors = tools.console_errors()
    assert errors == [], f"console errors: {errors}"
    assert facts["tables"] == 4
    assert {"Ablation: GAP@20 and hit@1", "Held-out clips", "Per-tag average precision"} <= set(facts["headings"])
    assert facts["best"] == ["ocr", "frames+audio+ocr", "stack"]
    assert len(facts["images"]) == 18
    assert all(i["w"] > 0 and i["h"] > 0 and i["shown"] > 0 for i in facts["images"]), facts["images"]
    assert facts["cjk"] is True
    assert facts["hostile"] == 0  # the escaped <script> tag stayed text
    assert "<script>alert(1)</script>" in facts["text"] and "室内/indoor" in facts["text"]
    assert len(shot["data"]) > 1000  # a screenshot was painted
    for selector, fonts in fonts_used.items():
        assert any(f["isCustomFont"] for f in fonts), f"{selector} drawn without the embedded CJK font: {fonts}"
