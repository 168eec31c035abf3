"""Turn a clip plan's visual and text cues into a :class:`Timeline` of layers.

Visual cues decide the scene, the drawing mode (cartoon or photographic), the grade, the
camera's motion, the number of cuts and panels, and the objects on screen. Text cues become
captions at the bottom (subtitles), a product banner at the top, a sale banner or burst,
tutorial step badges and a joke bubble; all captions stay on screen for at least 1.4 s so
frames sampled every 500 ms catch them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from adtag_demo import sprites
from adtag_demo.compose import Layer, Motion, Panel, Shot, Timeline
from adtag_demo.fonts import FontChoice, drawable, render_text
from adtag_demo.looks import grade, grain_frames
from adtag_demo.plan import ClipPlan
from adtag_demo.scenes import draw_scene
from adtag_demo.script import PHRASES, lines_for
from adtag_demo.taxonomy import PRODUCTS

STYLE_LOOKS = {"warm": "warm", "tech": "tech", "premium": "premium", "vintage": "vintage", "funny": "vivid"}


@dataclass
class Picture:
    """The built picture track and the text it shows (for the corpus record)."""

    timeline: Timeline
    texts: list[str] = field(default_factory=list)
    scene: str = "studio"
    mode: str = "live"


def _scene_kind(plan: ClipPlan) -> str:
    for key in ("indoor", "city", "nature", "outdoor"):
        if plan.cued(key, "visual"):
            return key
    return "studio"


def _looks(plan: ClipPlan, animated: bool) -> list[str]:
    looks = ["night"] if plan.cued("night", "visual") else []
    looks += [look for key, look in STYLE_LOOKS.items() if plan.cued(key, "visual")]
    if animated and "vivid" not in looks:
        looks.append("vivid")
    return looks


def _graded(img: np.ndarray, looks: list[str]) -> np.ndarray:
    for look in looks:
        img = grade(img, look)
    return img


def _decorate(bg: np.ndarray, plan: ClipPlan, rng: np.random.Generator) -> np.ndarray:
    """Style marks painted into the background: tech grids, warm bokeh, energetic speed lines."""
    bg = bg.copy()
    h, w = bg.shape[:2]
    if plan.cued("tech", "visual"):
        step = max(16, min(h, w) // 10)
        for off in (0, 1):
            bg[off::step, :] = (0.3 * bg[off::step, :] + (0, 170, 178)).astype(np.uint8)
            bg[:, off::step] = (0.3 * bg[:, off::step] + (0, 170, 178)).astype(np.uint8)
    if plan.cued("warm", "visual"):
        yy, xx = np.mgrid[0:h, 0:w]
        for _ in range(10):
            cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.uniform(0.03, 0.08) * min(h, w)
            disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
            bg[disc] = (0.6 * bg[disc] + (100, 80, 30)).clip(0, 255).astype(np.uint8)
    if plan.cued("energetic", "visual"):
        for _ in range(14):
            y = int(rng.integers(0, h))
            x0 = int(rng.integers(0, w))
            length = int(rng.uniform(0.15, 0.4) * w)
            bg[y : y + 3, x0 : x0 + length] = (255, 255, 255)
    return bg


def _panels(
    plan: ClipPlan, kind: str, rng: np.random.Generator, animated: bool, looks: list[str], speed: float
) -> list[Panel]:
    w, h = plan.width, plan.height
    if plan.cued("split", "visual"):
        k = 3 if rng.random() < 0.3 else 2
        if w >= h:
            edges = np.linspace(0, w, k + 1).astype(int)
            rects = [(int(edges[i]), 0, int(edges[i + 1] - edges[i]), h) for i in range(k)]
        else:
            edges = np.linspace(0, h, k + 1).astype(int)
            rects = [(0, int(edges[i]), w, int(edges[i + 1] - edges[i])) for i in range(k)]
    else:
        rects = [(0, 0, w, h)]
    night = plan.cued("night", "visual")
    panels = []
    for i, (x, y, pw, ph) in enumerate(rects):
        mx, my = int(pw * 0.12 * speed) + 8, int(ph * 0.12 * speed) + 8
        panel_kind = kind if i == 0 or rng.random() < 0.6 else "studio"
        bg = draw_scene(panel_kind, pw + 2 * mx, ph + 2 * my, rng, animated, night)
        if plan.cued("closeup", "visual"):  # shallow depth of field: the product is all in focus
            radius = max(3.0, min(pw, ph) / 40)
            bg = np.asarray(Image.fromarray(bg).filter(ImageFilter.GaussianBlur(radius)))
        bg = _graded(_decorate(bg, plan, rng), looks)
        start = (int(rng.integers(0, 2 * mx + 1)), int(rng.integers(0, 2 * my + 1)))
        end = (int(rng.integers(0, 2 * mx + 1)), int(rng.integers(0, 2 * my + 1)))
        shake = max(1, min(pw, ph) // 60) if plan.cued("energetic", "visual") else 0
        panels.append(Panel(x, y, pw, ph, bg, start, end, shake))
    return panels


def _divider_layers(panels: list[Panel], width: int, height: int) -> list[Layer]:
    """The bold white bars between split-screen panels, the layout's visual signature."""
    bar = max(6, min(width, height) // 45)
    layers = []
    for p in panels[1:]:
        vertical = p.x > 0
        size = (p.h, bar) if vertical else (bar, p.w)
        rgba = np.full((*size, 4), 255, np.uint8)
        x, y = (p.x - bar // 2, p.y) if vertical else (p.x, p.y - bar // 2)
        layers.append(Layer.from_rgba(rgba, Motion(x, y, x, y)))
    return layers


def _float_motion(x: float, y: float, rng: np.random.Generator, span: float, speed: float) -> Motion:
    dx, dy = rng.uniform(-span, span, 2) * speed
    return Motion(x, y, x + dx, y + dy)


def _object_layers(
    plan: ClipPlan, rng: np.random.Generator, animated: bool, looks: list[str], speed: float, panels: list[Panel]
) -> list[Layer]:
    """Products, people, gags and sale bursts, placed inside the shot's panels."""
    w, h = plan.width, plan.height
    base = min(w, h)
    layers: list[Layer] = []
    main = panels[0]
    other = panels[1] if len(panels) > 1 else panels[0]
    products = [k for k in PRODUCTS if plan.cued(k, "visual")]
    closeup = plan.cued("closeup", "visual")
    left_side = rng.random() < 0.5
    for n, kind in enumerate(products):
        size = int((0.85 if closeup and n == 0 else 0.4) * min(main.w, main.h))
        img = _graded(sprites.product(kind, size, rng, animated), looks)
        if closeup and n == 0:
            x, y = main.x + (main.w - size) / 2, main.y + (main.h - size) / 2
        else:
            frac = 0.08 if left_side else 0.92
            x = main.x + frac * main.w - (0 if left_side else size)
            y = main.y + main.h * 0.55 - size / 2
        motion = _float_motion(x, y, rng, 0.05 * base, speed)
        if plan.cued("funny", "visual") or kind == "game":
            motion.bounce, motion.freq = 0.08 * base, 1.5
        layers.append(Layer.from_rgba(img, motion))
        if not animated and rng.random() < 0.25:
            box = sprites.package_photo(int(0.22 * base), rng)
            if box is not None:
                bx = main.x + (main.w * 0.7 if left_side else main.w * 0.1)
                layers.append(
                    Layer.from_rgba(
                        _graded(box, looks), _float_motion(bx, main.y + main.h * 0.6, rng, 0.03 * base, speed)
                    )
                )
    if plan.cued("game", "visual"):
        for _ in range(3):
            c = sprites.coin(max(12, int(0.07 * base)))
            y = rng.uniform(0.1, 0.5) * h
            layers.append(
                Layer.from_rgba(c, Motion(-0.1 * w, y, 1.1 * w, y + rng.uniform(-0.1, 0.1) * h, 0.05 * base, 2.0))
            )
    if plan.cued("person", "visual"):
        room = other if other is not main else main
        # The person takes most of the panel's height, but never more than ~60% of its width.
        ph = int(min(0.8 * room.h, 0.6 * room.w / 0.75))
        img = _graded(sprites.person(ph, rng, animated), looks)
        pw = img.shape[1]
        if other is not main:
            x = other.x + (other.w - pw) / 2
        else:
            x = main.x + (main.w * 0.9 - pw if left_side else main.w * 0.1)
        y = other.y + other.h - ph
        layers.append(Layer.from_rgba(img, _float_motion(x, y, rng, 0.02 * base, speed)))
    if plan.cued("funny", "visual"):
        for _ in range(2):
            size = int(0.22 * base)
            x, y = rng.uniform(0, w - size), rng.uniform(0.2 * h, h - size)
            m = Motion(x, y, rng.uniform(0, w - size), y, 0.2 * base, rng.uniform(1.0, 2.0))
            layers.append(Layer.from_rgba(_graded(sprites.googly(size, rng), looks), m))
    if plan.cued("premium", "visual"):  # a thin gold frame, as four bars (a full-frame layer costs a blend per pixel)
        t, inset = max(3, base // 60), max(6, base // 25)
        gold = np.array([212, 175, 55, 255], np.uint8)
        for x, y, bw, bh in (
            (inset, inset, w - 2 * inset, t),
            (inset, h - inset - t, w - 2 * inset, t),
            (inset, inset, t, h - 2 * inset),
            (w - inset - t, inset, t, h - 2 * inset),
        ):
            layers.append(Layer.from_rgba(np.broadcast_to(gold, (bh, bw, 4)).copy(), Motion(x, y, x, y)))
    return layers


def _burst_layer(plan: ClipPlan, rng: np.random.Generator, font: FontChoice, texts: list[str]) -> Layer:
    w, h = plan.width, plan.height
    size = int(0.34 * min(w, h))
    img = sprites.burst(size, rng).copy()
    if plan.cued("promotion", "text") and plan.has_text:
        # "限时优惠" or "五折" in the burst; "SALE" when no CJK font can draw them.
        word = drawable(PHRASES["promotion"][int(rng.integers(2))][0].split(" ")[0], font) or "SALE"
        label = render_text(word, font, int(size * 0.2), (255, 255, 0), (120, 0, 0), max_width=int(size * 0.8))
        lh, lw = label.shape[:2]
        oy, ox = (size - lh) // 2, (size - lw) // 2
        region = img[oy : oy + lh, ox : ox + lw]
        a = label[..., 3:4] / 255.0
        region[..., :3] = (region[..., :3] * (1 - a) + label[..., :3] * a).astype(np.uint8)
        region[..., 3] = np.maximum(region[..., 3], label[..., 3])
        texts.append(word)
    x = w - size - 0.04 * w if rng.random() < 0.5 else 0.04 * w
    return Layer.from_rgba(img, Motion(x, 0.3 * h, x, 0.3 * h, 0.03 * size, 2.0))


def _windows(duration: float, n: int, rng: np.random.Generator, start: float = 0.2) -> list[tuple[float, float]]:
    """``n`` consecutive on-screen windows covering [start, duration), each at least 1.4 s."""
    n = max(1, min(n, int((duration - start) // 1.4)))
    cuts = np.sort(rng.uniform(0, 1, n - 1)) if n > 1 else np.array([])
    edges = np.concatenate([[0.0], cuts, [1.0]])
    edges = np.linspace(0, 1, n + 1) * 0.5 + edges * 0.5  # even-ish, never too short
    return [
        (start + (duration - start) * a, start + (duration - start) * b)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]


def _text_layers(plan: ClipPlan, rng: np.random.Generator, font: FontChoice, texts: list[str]) -> list[Layer]:
    if not plan.has_text:
        return []
    w, h = plan.width, plan.height
    base = min(w, h)
    dur = plan.duration
    layers: list[Layer] = []

    def add(line: str, size: int, x: float | None, y: float, t0: float, t1: float, **style) -> None:
        if not drawable(line, font):
            return
        img = render_text(line, font, size, max_width=int(0.92 * w), **style)
        lx = (w - img.shape[1]) / 2 if x is None else x
        layers.append(Layer.from_rgba(img, Motion(lx, y, lx, y), t0, t1))
        texts.append(drawable(line, font))

    text_keys = [
        k
        for k in ("cosmetics", "food", "electronics", "game", "promotion", "tutorial", "funny")
        if plan.cued(k, "text")
    ]
    if plan.cued("subtitles", "text"):
        spans = _windows(dur, int(dur // 2.2), rng)
        for (t0, t1), line in zip(spans, lines_for(text_keys, rng, len(spans), caption=True), strict=False):
            size = max(20, int(base * 0.085))
            add(line, size, None, h - size * 1.6 - 0.05 * h, t0, t1)
    top = 0.05 * h  # product banners stack downwards from the top
    for key in ("cosmetics", "food", "electronics", "game"):
        if plan.cued(key, "text"):
            line = PHRASES[key][int(rng.integers(len(PHRASES[key])))][0]
            t0 = rng.uniform(0.0, 0.3 * dur)
            size = max(22, int(base * 0.1))
            add(
                line,
                size,
                None,
                top,
                t0,
                max(t0 + 2.5, dur * rng.uniform(0.7, 1.0)),
                fill=(255, 255, 255),
                stroke=(20, 20, 60),
                box=(0, 0, 0, 110),
            )
            top += size * 1.9
    if plan.cued("promotion", "text") and not plan.cued("promotion", "visual"):
        line = PHRASES["promotion"][int(rng.integers(len(PHRASES["promotion"])))][0]
        t0 = rng.uniform(0.2, 0.5 * dur)
        add(
            line,
            max(22, int(base * 0.1)),
            None,
            0.32 * h,
            t0,
            min(dur, t0 + rng.uniform(2.5, 4.0)),
            fill=(255, 240, 0),
            stroke=(140, 0, 0),
            box=(210, 20, 30, 230),
        )
    if plan.cued("tutorial", "text"):
        steps = [p[0] for p in PHRASES["tutorial"]]
        for (t0, t1), line in zip(_windows(dur, 3, rng, start=0.5), steps, strict=False):
            add(
                line,
                max(20, int(base * 0.08)),
                0.04 * w,
                0.2 * h,
                t0,
                t1,
                fill=(20, 20, 20),
                stroke=None,
                box=(255, 255, 255, 235),
            )
    if plan.cued("funny", "text"):
        line = PHRASES["funny"][int(rng.integers(len(PHRASES["funny"])))][0]
        t0 = rng.uniform(0.1 * dur, 0.5 * dur)
        add(
            line,
            max(22, int(base * 0.1)),
            rng.uniform(0.05, 0.4) * w,
            0.45 * h,
            t0,
            t0 + 2.0,
            fill=(20, 20, 20),
            stroke=None,
            box=(255, 255, 255, 255),
        )
    return layers


def build_picture(plan: ClipPlan, rng: np.random.Generator, font: FontChoice) -> Picture:
    """Build the picture track of ``plan`` from its own random stream."""
    animated = plan.cued("animation", "visual")
    kind = _scene_kind(plan)
    looks = _looks(plan, animated)
    speed = 2.5 if plan.cued("energetic", "visual") else 0.35 if plan.cued("premium", "visual") else 1.0
    dur = plan.duration
    n_shots = int(rng.integers(3, 5)) if plan.cued("story", "visual") else (2 if rng.random() < 0.3 else 1)
    cuts = np.linspace(0, dur, n_shots + 1)
    if n_shots > 1:
        cuts[1:-1] += rng.uniform(-0.25, 0.25, n_shots - 1) * dur / n_shots
    texts: list[str] = []
    shots = []
    for t0, t1 in zip(cuts[:-1], cuts[1:], strict=True):
        panels = _panels(plan, kind, rng, animated, looks, speed)
        layers = _divider_layers(panels, plan.width, plan.height)
        layers += _object_layers(plan, rng, animated, looks, speed, panels)
        for layer in layers:  # object paths run over the shot, not the whole clip
            if layer.t1 == np.inf:
                layer.t0, layer.t1 = float(t0), float(t1)
        shots.append(Shot(float(t0), float(t1) if t1 < dur else float("inf"), panels, layers))
    overlays: list[Layer] = []
    if plan.cued("promotion", "visual"):
        overlays.append(_burst_layer(plan, rng, font, texts))
    overlays += _text_layers(plan, rng, font, texts)
    grain = grain_frames(plan.height, plan.width, rng) if plan.cued("vintage", "visual") else []
    timeline = Timeline(
        plan.width,
        plan.height,
        plan.fps,
        plan.n_frames,
        shots,
        overlays,
        grain,
        flash_every=0.5 if plan.cued("energetic", "visual") else 0.0,
    )
    return Picture(timeline, texts, kind, "animation" if animated else "live")
