"""One video -> one Item: decode once, run each encoder on what it needs, time every stage."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.manifest import Item
from adtag.encoders import create_encoder, encoder_spec
from adtag.errors import AdtagError
from adtag.features.ocr_frames import OcrPolicy, OcrTracker
from adtag.media import MediaError, iter_frames, probe, read_audio

ROLES = ("visual", "audio", "asr", "ocr", "text")

# The encoders a model's config records; ``adtag predict`` extracts with the same ones.
DEFAULT_ENCODERS: dict[str, str] = {
    "visual": "visual/efficientnet-lite0",
    "audio": "audio/whisper-base",
    "asr": "asr/whisper-base",
    "ocr": "ocr/ppocr-v4",
    "text": "text/multilingual-e5-small",
}

VISUAL_BATCH = 16


def resolve_encoders(encoders: Mapping[str, str | None] | list[str] | None = None) -> dict[str, str]:
    """The role -> encoder mapping to extract with, each name checked against the registry.

    None gives DEFAULT_ENCODERS. A mapping is the complete set, as recorded in a model's config (a
    role it lacks stays off). A list of ``ROLE=SPEC[,ROLE=SPEC]`` strings (the ``--encoders``
    option) overrides the defaults: SPEC is ``KIND/MODEL[:PATH]`` (the kind may be left out:
    ``vit:/path``) or ``none`` to switch the role off.
    """
    if encoders is None:
        wanted: dict[str, str | None] = dict(DEFAULT_ENCODERS)
    elif isinstance(encoders, list):
        wanted = dict(DEFAULT_ENCODERS)
        for entry in encoders:
            for part in filter(None, (p.strip() for p in entry.split(","))):
                role, sep, spec = part.partition("=")
                if not sep:
                    raise AdtagError(f"--encoders expects ROLE=NAME[:PATH], got {part!r}")
                wanted[role.strip()] = spec.strip()
    else:
        wanted = dict(encoders)
    out: dict[str, str] = {}
    for role, spec in wanted.items():
        if role not in ROLES:
            raise AdtagError(f"unknown encoder role {role!r}; roles: {', '.join(ROLES)}")
        if spec is None or str(spec).lower() in ("", "none", "off"):
            continue
        name, _, path = str(spec).partition(":")
        if "/" not in name:
            name = f"{role}/{name}"
        info = encoder_spec(name)
        if info.kind != role:
            raise AdtagError(f"encoder {name!r} is a {info.kind} encoder, not {role}")
        out[role] = f"{name}:{path}" if path else name
    return out


class Extractor:
    """Holds the loaded encoders (built once, reused for every video) and extracts one video at a time."""

    def __init__(
        self,
        encoders: Mapping[str, str | None] | None = None,
        threads: int = 1,
        frame_interval: float = 0.5,
        ocr_policy: OcrPolicy | None = None,
    ) -> None:
        self.specs = resolve_encoders(encoders)
        self.models: dict[str, Any] = {role: create_encoder(spec, threads=threads) for role, spec in self.specs.items()}
        self.frame_interval = frame_interval
        self.ocr_policy = ocr_policy or OcrPolicy()

    def extract(self, path: str | Path, item_id: str | None = None, language: str | None = None) -> tuple[Item, dict]:
        """Extract every modality the encoders give; returns the Item (in-memory arrays) and stage timings.

        Timings are seconds of wall time per stage (``probe``, ``decode``, ``visual``, ``ocr``,
        ``audio_decode``, ``audio``, ``asr``, ``text``), plus counts (``frames``, ``ocr_frames``) and
        ``warnings``: modalities that could not be read while others could.
        Raises MediaError (naming the file) when nothing at all can be extracted.
        """
        path = Path(path)
        for model in self.models.values():
            if hasattr(model, "reset"):
                model.reset()
        timings: dict[str, Any] = {"warnings": []}
        with _timed(timings, "probe"):
            info = probe(path)
        item = Item(id=item_id or path.stem, video=path)
        if info.has_video and ("visual" in self.models or "ocr" in self.models):
            try:
                self._video(path, item, timings)
            except MediaError as exc:
                timings["warnings"].append(exc.reason)
        if info.has_audio and ("audio" in self.models or "asr" in self.models):
            try:
                self._audio(path, item, timings, language)
            except MediaError as exc:
                timings["warnings"].append(exc.reason)
        if not item.features and not item.text:
            reason = "; ".join(timings["warnings"]) or "no decodable video frames or audio samples"
            raise MediaError(path, reason)
        self._text(item, timings)
        item.extra = info.as_extra()
        return item, timings

    def _video(self, path: Path, item: Item, timings: dict) -> None:
        visual = self.models.get("visual")
        tracker = OcrTracker(self.models["ocr"], self.ocr_policy) if "ocr" in self.models else None
        size = getattr(visual, "input_size", (224, 224))
        batch: list[np.ndarray] = []
        feats: list[np.ndarray] = []
        frames = iter_frames(path, self.frame_interval)
        count = 0
        while True:
            with _timed(timings, "decode"):
                frame = next(frames, None)
                if frame is not None and visual is not None:
                    batch.append(frame.image(size[1], size[0]))
            if frame is None:
                break
            count += 1
            if visual is not None and (len(batch) == VISUAL_BATCH):
                with _timed(timings, "visual"):
                    feats.append(visual.encode(np.stack(batch)))
                batch.clear()
            if tracker is not None:
                with _timed(timings, "ocr"):
                    tracker.feed(frame)
        if visual is not None and batch:
            with _timed(timings, "visual"):
                feats.append(visual.encode(np.stack(batch)))
        timings["frames"] = count
        if feats:
            item.features["frames"] = np.concatenate(feats).astype(np.float32, copy=False)
        if tracker is not None:
            timings["ocr_frames"] = tracker.frames_read
            timings["ocr_probes"] = tracker.probes
            if tracker.text:
                item.text["ocr"] = tracker.text

    def _audio(self, path: Path, item: Item, timings: dict, language: str | None) -> None:
        with _timed(timings, "audio_decode"):
            samples = read_audio(path)
        if samples is None or len(samples) == 0:
            return
        if "audio" in self.models:
            with _timed(timings, "audio"):
                seq = self.models["audio"].encode(samples)
            if len(seq):
                item.features["audio"] = seq.astype(np.float32, copy=False)
        if "asr" in self.models:
            with _timed(timings, "asr"):
                text = self.models["asr"].transcribe(samples, language=language)
            if text:
                item.text["asr"] = text

    def _text(self, item: Item, timings: dict) -> None:
        encoder = self.models.get("text")
        names = [k for k in ("ocr", "asr") if item.text.get(k)]
        if encoder is None or not names:
            return
        with _timed(timings, "text"):
            vectors = encoder.encode([item.text[k] for k in names])
        for name, vec in zip(names, vectors, strict=True):
            item.features[f"{name}_emb"] = np.asarray(vec, dtype=np.float32)


@contextmanager
def _timed(timings: dict, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
