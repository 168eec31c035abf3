"""The encoder registry: every registered encoder runs on a tiny generated clip, offline.

The paper's encoders (ViT, BERT, VGGish) load from a local path; the tests save tiny randomly
initialised models of the same formats first and load them through the real loading code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adtag.encoders import create_encoder, encoder_spec, list_encoders
from adtag.encoders.asr import head_tail, speech_spans
from adtag.encoders.audio import pool_segments
from adtag.encoders.whisper import split_windows
from adtag.errors import AdtagError
from adtag.features.pipeline import DEFAULT_ENCODERS, resolve_encoders
from adtag.media import iter_frames, read_audio
from tests.clips import make_clip, speech, tone

CAPTION = "BUY ONE GET ONE FREE"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("enc") / "clip.mp4"
    return make_clip(path, seconds=2.0, width=640, height=360, fps=10, captions=[(0, 2, CAPTION)])


def _tiny_vit(folder: Path) -> None:
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=16
    )
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(folder)


def _tiny_bert(folder: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"限时优惠买一送", "free", "delivery"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(cfg, add_pooling_layer=False).save_pretrained(folder)


def _tiny_vggish(folder: Path) -> None:
    """A torchvggish-layout state dict with few channels (the real one is 72M parameters)."""
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    channels = 1
    for v in [4, "M", 4, "M", 8, 8, "M", 8, 8, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU()]
            channels = int(v)
    embeddings = nn.Sequential(
        nn.Linear(8 * 6 * 4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU()
    )
    model = nn.Module()
    model.features, model.embeddings = nn.Sequential(*layers), embeddings
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "vggish.pth")


TINY = {"visual/vit": (_tiny_vit, 32), "text/bert": (_tiny_bert, 32), "audio/vggish": (_tiny_vggish, 8)}


def test_registry_lists_the_defaults_with_their_dimensions() -> None:
    names = list_encoders()
    assert set(DEFAULT_ENCODERS.values()) <= set(names)
    assert list_encoders("visual/*") == ["visual/efficientnet-lite0", "visual/vit"]
    dims = {n: encoder_spec(n).dim for n in DEFAULT_ENCODERS.values()}
    assert dims == {
        "visual/efficientnet-lite0": 1280,
        "audio/whisper-base": 512,
        "asr/whisper-base": None,
        "ocr/ppocr-v4": None,
        "text/multilingual-e5-small": 384,
    }
    with pytest.raises(AdtagError, match="unknown encoder"):
        create_encoder("visual/nope")
    with pytest.raises(AdtagError, match="local path"):
        create_encoder("visual/vit")


@pytest.mark.parametrize("name", list_encoders())
def test_every_registered_encoder_runs_on_a_tiny_clip(name: str, clip: Path, tmp_path: Path) -> None:
    spec = encoder_spec(name)
    path = None
    if spec.needs_path:
        build, tiny_dim = TINY[name]
        build(tmp_path / "model")
        path = str(tmp_path / "model")
    encoder = create_encoder(name, threads=1, path=path)
    dim = tiny_dim if spec.needs_path else spec.dim
    if spec.kind == "visual":
        h, w = encoder.input_size
        frames = np.stack([f.image(w, h) for f in iter_frames(clip)])
        out = encoder.encode(frames)
        assert out.shape == (4, dim)
        assert not np.allclose(out[0], out[2])  # different scenes, different features
    elif spec.kind == "audio":
        out = encoder.encode(read_audio(clip))
        assert out.shape == (math.ceil(2.0 / 0.96), dim)
    elif spec.kind == "asr":
        assert encoder.transcribe(tone(2.0)) == ""  # music only: voice detection skips decoding
    elif spec.kind == "ocr":
        lines = encoder.read(next(iter_frames(clip)).image(640, fmt="bgr24"))
        assert [line.text.replace(" ", "") for line in lines] == [CAPTION.replace(" ", "")]
    elif spec.kind == "text":
        out = encoder.encode(["限时优惠 买一送一", "free delivery"])
        assert out.shape == (2, dim) and not np.allclose(out[0], out[1])
    if spec.kind in ("visual", "audio", "text"):
        assert out.dtype == np.float32 and np.isfinite(out).all()


def test_asr_transcribes_speech_and_detects_its_language() -> None:
    try:
        audio = speech("Buy one get one free. Limited time offer on running shoes.", seconds=8.0)
    except RuntimeError as exc:
        pytest.skip(f"cannot synthesise speech here: {exc}")
    asr = create_encoder("asr/whisper-base")
    assert speech_spans(audio) and not speech_spans(np.zeros(32000, np.float32))
    text = asr.transcribe(audio)
    assert asr.language == "en"
    words = text.lower()
    assert "free" in words and "limited time" in words and "shoes" in words
    assert "shoes" in asr.transcribe(audio, language="en").lower() and asr.language == "en"  # forced


def test_whisper_encoder_runs_on_the_audios_length_not_a_30_s_window() -> None:
    import ctranslate2

    from adtag.encoders.audio import WhisperAudio
    from adtag.encoders.whisper import whisper_backend

    try:
        voice = speech("Order online before Sunday and enjoy free delivery to your door.")
    except RuntimeError as exc:
        pytest.skip(f"cannot synthesise speech here: {exc}")
    backend = whisper_backend(1)
    backend.forget()
    short = np.pad(voice, (4000, 4000)) + tone(len(voice) / 16000 + 0.5, level=0.05)[: len(voice) + 8000]
    (window,) = backend.encode(short)  # ~5 s: encoded as 20 s (the shortest input), not 30 s
    assert tuple(window.output.shape) == (1, 1000, 512) and window.valid == len(short) // 320
    backend.forget()
    long = np.tile(short, int(np.ceil(35 * 16000 / len(short))))[: 45 * 16000]  # 35-45 s: two near-equal windows
    windows = backend.encode(long)
    n_mel = len(long) // 160
    assert len(windows) == 2 and tuple(windows[0].output.shape) == tuple(windows[1].output.shape)
    assert abs(windows[1].start * 100 - n_mel / 2) <= 300 and sum(w.valid for w in windows) == n_mel // 2
    assert 1000 <= windows[0].output.shape[1] < 1500  # each padded to its own length (>= 20 s), not 30 s
    # The audio embedding stays close to the one from a padded 30 s window.
    mel = backend.model.feature_extractor(short)[:, :-1]
    padded = np.pad(mel, ((0, 0), (0, 3000 - mel.shape[1])))[None].astype(np.float32)
    full = np.asarray(backend.model.model.encode(ctranslate2.StorageView.from_array(padded), to_cpu=True))[0]
    backend.forget()
    ours = WhisperAudio(threads=1).encode(short)
    theirs = pool_segments(full[: window.valid], 48)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert ours.shape == theirs.shape and cosine.min() > 0.9
    text = create_encoder("asr/whisper-base").transcribe(short).lower()
    assert "before sunday" in text and "free delivery to your door" in text


def test_split_windows_cuts_long_audio_into_near_equal_windows_at_a_pause() -> None:
    def mel(n: int, pause: int | None = None) -> np.ndarray:
        m = np.ones((80, n), np.float32)
        if pause is not None:
            m[:, pause : pause + 30] = -1.0  # 0.3 s of silence
        return m

    assert split_windows(mel(1000)) == [(0, 1000)]
    assert split_windows(mel(3050)) == [(0, 3000)]  # a tail under 1 s past 30 s is left out
    assert split_windows(mel(6000)) == [(0, 3000), (3000, 6000)]
    (a, cut), (cut2, b) = split_windows(mel(4500, pause=2400))
    assert (a, b) == (0, 4500) and cut == cut2 and 2400 <= cut <= 2430 and cut % 2 == 0  # in the pause
    (_, cut), _ = split_windows(mel(4500, pause=3400))  # a pause too far from the middle is not used
    assert abs(cut - 2250) <= 300
    bounds = split_windows(mel(8000))
    assert len(bounds) == 3 and all(e - s <= 3000 for s, e in bounds) and bounds[-1][1] == 8000


def test_asr_reads_two_windows_decoded_together_as_each_alone() -> None:
    try:
        first = speech("Order online before Sunday and enjoy free delivery to your door.", seconds=30.0)
        second = speech("Buy one get one free. Limited time offer on running shoes.", seconds=30.0)
    except RuntimeError as exc:
        pytest.skip(f"cannot synthesise speech here: {exc}")
    asr = create_encoder("asr/whisper-base")
    audio = np.concatenate([first, second])
    windows = asr.backend.encode(audio)
    assert len(windows) == 2 and tuple(windows[0].output.shape) == tuple(windows[1].output.shape)
    text = asr.transcribe(audio, language="en").lower()
    alone = [asr.transcribe(half, language="en").lower() for half in (first, second)]
    assert "free delivery" in text and "running shoes" in text
    assert text == " ".join(alone)  # decoded together, read as when decoded one by one


def test_head_tail_keeps_the_first_and_last_words() -> None:
    text = " ".join(f"w{i}" for i in range(300))
    kept = head_tail(text, 128).split()
    assert len(kept) == 256 and kept[0] == "w0" and kept[127] == "w127" and kept[128] == "w172"
    assert head_tail("限时优惠买一送一", 2) == "限时 送一"
    assert head_tail("short text", 128) == "short text"


def test_pool_segments_averages_blocks() -> None:
    frames = np.arange(10, dtype=np.float32)[:, None].repeat(2, axis=1)
    assert pool_segments(frames, 4).tolist() == [[1.5, 1.5], [5.5, 5.5], [8.5, 8.5]]


def test_resolve_encoders_overrides_and_switches_off() -> None:
    specs = resolve_encoders(["visual=vit:/models/vit,ocr=none", "asr=asr/whisper-base"])
    assert specs["visual"] == "visual/vit:/models/vit" and "ocr" not in specs
    assert specs["audio"] == DEFAULT_ENCODERS["audio"]
    recorded = {"visual": "visual/efficientnet-lite0", "text": "multilingual-e5-small"}
    assert resolve_encoders(recorded) == {"visual": "visual/efficientnet-lite0", "text": "text/multilingual-e5-small"}
    with pytest.raises(AdtagError, match="not visual"):
        resolve_encoders({"visual": "audio/whisper-base"})
    with pytest.raises(AdtagError, match="ROLE=NAME"):
        resolve_encoders(["visual"])
