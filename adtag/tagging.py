"""The one use case "tag this video": read a video's modalities, then ask the model for its tags.

``adtag tag``, ``adtag predict`` on raw videos and the service's upload route all go through
here, so they check the language the same way, keep the same warnings and answer the same
fields. Two steps, because the service runs them on different pools:

    read = read_video(video, extractor, language=..., item_id=...)   # decode + encoders
    result = tag_item(tagger, read, top_k=10)                          # branches + fusion
    result.to_json()

``tag_video`` chains both for a single call. New fields of the answer (decided tags, scores)
go on ``TagResult``; ``to_json`` carries them to every caller.
"""

from __future__ import annotations

import base64
import io
import time
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adtag.data.limits import cap_text
from adtag.data.manifest import Item
from adtag.errors import AdtagError

if TYPE_CHECKING:
    from adtag.features.pipeline import Extractor
    from adtag.models.tagger import Tagger

MAX_ID_CHARS = 200


@dataclass
class BranchShare:
    probability: float  # this branch's own probability for the tag
    share: float  # its share of the stacker's decision (shares of a tag sum to 1)


@dataclass
class TagScore:
    tag: str
    score: float
    branches: dict[str, BranchShare] = field(default_factory=dict)  # empty for the neural fusions


@dataclass
class VideoRead:
    """A video's modalities as the encoders read them, with what it cost and what went wrong."""

    item: Item
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    warnings: list[str] = field(default_factory=list)  # modalities that could not be read
    thumbnails: list[str] = field(default_factory=list)  # JPEG data URIs, when asked for


@dataclass
class TagResult:
    """The answer for one item: its top tags and the evidence behind them."""

    id: str
    tags: list[TagScore]
    text: dict[str, str] = field(default_factory=dict)  # the text modalities used (OCR/ASR read)
    extra: dict[str, float] = field(default_factory=dict)
    modalities: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    thumbnails: list[str] = field(default_factory=list)
    video: str | None = None
    # With a decision layer (adtag train --decide): decided tags and the review band, {tag, score}.
    decided: list[dict[str, Any]] | None = None
    review: list[dict[str, Any]] | None = None

    def to_json(self, text_limit: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict; ``text_limit`` shortens each echoed text (the service's answers)."""
        out = asdict(self)
        if text_limit is not None:
            out["text"] = {k: echo_text(v, text_limit) for k, v in self.text.items()}
        out["timings"] = {k: round(v, 6) for k, v in self.timings.items()}
        return out


def clean_id(raw: str, fallback: str = "item") -> str:
    """An item id safe to echo: control and format characters (NUL, newlines, bidi marks) removed."""
    kept = "".join(c for c in raw if unicodedata.category(c) not in ("Cc", "Cf", "Cs")).strip()
    return kept[:MAX_ID_CHARS] or fallback


def echo_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" […{len(text) - limit} more characters]"


def check_language(language: str | None) -> str | None:
    """``language`` stripped and known to Whisper, or None; AdtagError naming the known codes."""
    if not language or not language.strip():
        return None
    from adtag.encoders.asr import check_language as known

    return known(language.strip())


def read_video(
    video: Path,
    extractor: Extractor,
    *,
    language: str | None = None,
    item_id: str | None = None,
    thumbnails: bool = False,
) -> VideoRead:
    """Extract every modality of ``video`` with ``extractor``; MediaError when nothing is readable."""
    item, stages = extractor.extract(Path(video), item_id=item_id, language=check_language(language))
    item.text = {k: cap_text(v) for k, v in item.text.items()}
    read = VideoRead(
        item=item,
        timings={k: float(v) for k, v in stages.items() if isinstance(v, float)},
        warnings=[str(w) for w in stages.get("warnings", [])],
    )
    if thumbnails:
        t0 = time.perf_counter()
        read.thumbnails = thumbnail_uris(Path(video))
        read.timings["thumbnails"] = time.perf_counter() - t0
    return read


def explain_items(tagger: Tagger, items: list[Item], top_k: int | list[int]) -> list[list[TagScore]]:
    """Top tags per item with each branch's probability and share of the decision (the fusion's
    branch weight times the branch's probability); ``top_k`` per item or for all. The scores are the
    tagger's (the fusion averaged over the K passes), the branch probabilities the passes' mean."""
    from adtag.models.tagger import fuse_passes  # (loaded with the tagger; kept off the CLI's import path)

    ks = top_k if isinstance(top_k, list) else [top_k] * len(items)
    mf = None
    if tagger.on_features:
        scores = tagger.predict_proba(items)
    else:
        passes = tagger.meta_features(items, passes=True)
        scores, mf = fuse_passes(tagger.fusion_, passes), replace(passes[0], P=np.mean([p.P for p in passes], axis=0))
    weights = None if mf is None else tagger.fusion_.branch_weights()
    out = []
    for i, (s, k) in enumerate(zip(scores, ks, strict=True)):
        rows = []
        for j in np.argsort(-s)[:k]:
            shares = {}
            if mf is not None:
                contrib = weights * mf.P[i, :, j] * mf.present[i]
                total = contrib.sum() or 1.0
                on = [b for b in range(len(mf.branches)) if mf.present[i, b]]
                shares = {mf.branches[b]: BranchShare(float(mf.P[i, b, j]), float(contrib[b] / total)) for b in on}
            rows.append(TagScore(tagger.vocab_.tags[j], float(s[j]), shares))
        out.append(rows)
    return out


def modalities_of(item: Item) -> list[str]:
    return sorted(list(item.text) + list(item.features) + (["extra"] if item.extra else []))


def tag_item(tagger: Tagger, read: VideoRead, top_k: int = 10) -> TagResult:
    """The model's answer for an item that ``read_video`` produced."""
    t0 = time.perf_counter()
    from adtag.decisions.decider import decided_fields

    (tags,) = explain_items(tagger, [read.item], top_k)
    item = read.item
    return TagResult(
        id=item.id,
        tags=tags,
        text=dict(item.text),
        extra=dict(item.extra),
        modalities=modalities_of(item),
        timings={**read.timings, "predict": time.perf_counter() - t0},
        warnings=list(read.warnings),
        thumbnails=list(read.thumbnails),
        video=str(item.video) if item.video is not None else None,
        **decided_fields(tagger, [item])[0],
    )


def tag_video(
    tagger: Tagger,
    video: Path,
    top_k: int = 10,
    language: str | None = None,
    extractor: Extractor | None = None,
    thumbnails: bool = False,
    scores: list[str] | None = None,
) -> TagResult:
    """Tag one video file with the encoders recorded in ``tagger`` (loaded once per process);
    ``scores`` are ``NAME=PRED.json`` files of external models that scored this video (its id is
    the file name without extension)."""
    if not tagger.config.encoders:
        raise AdtagError("this model was trained without extraction encoders; it cannot read a video")
    if extractor is None:
        from adtag.features.extract import get_extractor

        extractor = get_extractor(tagger.config.encoders)
    t0 = time.perf_counter()
    read = read_video(video, extractor, language=language, thumbnails=thumbnails)
    if scores:
        import sys

        from adtag.data.scores import attach_score_files

        attach_score_files([read.item], scores, tagger.vocab_.tags, log=lambda m: print(m, file=sys.stderr))
    result = tag_item(tagger, read, top_k)
    result.timings["total"] = time.perf_counter() - t0
    return result


def thumbnail_uris(path: Path, n: int = 6, height: int = 72) -> list[str]:
    """A strip of ``n`` JPEG frames as data URIs."""
    from PIL import Image

    from adtag.report.thumbnails import thumbnail_strip

    uris = []
    for frame in thumbnail_strip(path, n=n, height=height):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=80)
        uris.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return uris
