"""The paper's own encoders, loaded from a local path: ViT-L/16 at 384, bert-base-chinese, VGGish.

Their weights do not ship in any package, so these take a folder or file the user already has
(``--encoders visual=vit:/models/vit-large-patch16-384``): a Hugging Face folder (config.json +
weights, tokenizer files for BERT) for ViT and BERT, and a torchvggish state dict (.pth) for
VGGish. Nothing is downloaded; loading is offline only. ``transformers`` is imported on use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from adtag.encoders.registry import register_encoder
from adtag.errors import AdtagError


def _hf_folder(path: str | os.PathLike, what: str) -> Path:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise AdtagError(f"{folder}: not a {what} model folder (no config.json)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging

    logging.disable_progress_bar()  # adtag extract has its own progress bar
    return folder


class ViTEncoder:
    """A Hugging Face ViT checkpoint: RGB frames at its own input size -> the [CLS] state per frame."""

    def __init__(self, path: str, threads: int = 1, batch_size: int = 8) -> None:
        import torch
        from transformers import ViTModel

        folder = _hf_folder(path, "ViT")
        torch.set_num_threads(threads)
        self.model = ViTModel.from_pretrained(folder, local_files_only=True, add_pooling_layer=False).eval()
        size = int(self.model.config.image_size)
        self.input_size = (size, size)
        self.dim = int(self.model.config.hidden_size)
        mean, std = [0.5] * 3, [0.5] * 3  # google/vit-* checkpoints; a preprocessor config overrides
        pre = folder / "preprocessor_config.json"
        if pre.is_file():
            cfg = json.loads(pre.read_text())
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        self.mean = np.asarray(mean, np.float32) * 255
        self.std = np.asarray(std, np.float32) * 255
        self.batch_size = batch_size

    def encode(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(frames), self.batch_size):
            x = (np.asarray(frames[i : i + self.batch_size], np.float32) - self.mean) / self.std
            with torch.inference_mode():
                hidden = self.model(pixel_values=torch.from_numpy(x.transpose(0, 3, 1, 2))).last_hidden_state
            out.append(hidden[:, 0].float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


class BertEncoder:
    """A Hugging Face BERT folder (weights + vocab): text -> mean of the last layer over its tokens."""

    def __init__(self, path: str, threads: int = 1, max_length: int = 512) -> None:
        import torch
        from transformers import AutoTokenizer, BertModel

        folder = _hf_folder(path, "BERT")
        torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = BertModel.from_pretrained(folder, local_files_only=True, add_pooling_layer=False).eval()
        self.dim = int(self.model.config.hidden_size)
        self.max_length = min(max_length, int(self.model.config.max_position_embeddings))

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dim), np.float32)
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy()


# -- VGGish ---------------------------------------------------------------------------------------

VGGISH_RATE = 16000
VGGISH_FRAMES = 96  # 0.96 s of 10 ms log-mel frames per example
VGGISH_BANDS = 64


def _mel_matrix(n_fft: int = 512, bands: int = VGGISH_BANDS, fmin: float = 125.0, fmax: float = 7500.0) -> np.ndarray:
    """HTK mel filterbank as in the VGGish reference front-end: (n_fft // 2 + 1, bands)."""

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)

    bins = mel(np.linspace(0, VGGISH_RATE / 2, n_fft // 2 + 1))
    edges = np.linspace(mel(fmin), mel(fmax), bands + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (center - lower)
    falling = (upper - bins[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0
    return weights.astype(np.float32)


def vggish_examples(audio: np.ndarray) -> np.ndarray:
    """16 kHz audio -> (N, 96, 64) log-mel examples (25 ms window, 10 ms hop, log(mel + 0.01))."""
    win, hop, n_fft = 400, 160, 512
    if len(audio) < win:
        audio = np.pad(audio, (0, win - len(audio)))
    n = 1 + (len(audio) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    frames = audio[idx] * np.hanning(win + 1)[:-1].astype(np.float32)  # periodic Hann
    spec = np.abs(np.fft.rfft(frames, n_fft))
    logmel = np.log(spec @ _mel_matrix(n_fft) + 0.01).astype(np.float32)
    count = max(1, -(-len(logmel) // VGGISH_FRAMES))
    logmel = np.pad(logmel, ((0, count * VGGISH_FRAMES - len(logmel)), (0, 0)))
    return logmel.reshape(count, VGGISH_FRAMES, VGGISH_BANDS)


def _vggish_module(state: dict) -> Any:
    """Rebuild the torchvggish layout (``features.*`` convs, ``embeddings.*`` linears) from the weights' shapes."""
    import torch
    from torch import nn

    convs = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")})
    linears = sorted({int(k.split(".")[1]) for k in state if k.startswith("embeddings.") and k.endswith(".weight")})
    if not convs or not linears:
        raise AdtagError("not a VGGish state dict (expected features.* and embeddings.* weights)")
    # torchvggish: conv, ReLU, [MaxPool] ... ; a slot after a conv is its ReLU, any other is a MaxPool.
    features: list[nn.Module] = []
    for i in range(convs[-1] + 3):
        if i in convs:
            w = state[f"features.{i}.weight"]
            features.append(nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1))
        else:
            features.append(nn.ReLU() if i - 1 in convs else nn.MaxPool2d(2, 2))
    embeddings: list[nn.Module] = []
    for i in range(linears[-1] + 2):
        if i in linears:
            w = state[f"embeddings.{i}.weight"]
            embeddings.append(nn.Linear(w.shape[1], w.shape[0]))
        else:
            embeddings.append(nn.ReLU())

    class VGGish(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*features)
            self.embeddings = nn.Sequential(*embeddings)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.features(x)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # TF's NHWC flattening order
            return self.embeddings(x)

    model = VGGish()
    model.load_state_dict({k: v for k, v in state.items() if k.startswith(("features.", "embeddings."))})
    return model.eval()


class VGGishEncoder:
    """A torchvggish state dict (.pth, or a folder holding one): 16 kHz audio -> one vector per 0.96 s."""

    def __init__(self, path: str, threads: int = 1) -> None:
        import torch

        p = Path(path)
        if p.is_dir():
            found = sorted([*p.glob("*.pth"), *p.glob("*.pt")])
            if not found:
                raise AdtagError(f"{p}: no .pth/.pt VGGish weights in this folder")
            p = found[0]
        if not p.is_file():
            raise AdtagError(f"{p}: VGGish weights not found")
        torch.set_num_threads(threads)
        state = torch.load(p, map_location="cpu", weights_only=True)
        self.model = _vggish_module(state)
        self.dim = int(self.model.embeddings[-2].out_features)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        import torch

        if len(audio) == 0:
            return np.zeros((0, self.dim), np.float32)
        x = torch.from_numpy(vggish_examples(np.asarray(audio, np.float32)))[:, None]
        with torch.inference_mode():
            return self.model(x).float().numpy()


@register_encoder(
    "visual/vit",
    dim=1024,
    weights="local path (Hugging Face ViT folder)",
    needs_path=True,
    description="the paper's ViT-L/16 at 384 (dimension read from the checkpoint)",
)
def vit(path: str, threads: int = 1) -> ViTEncoder:
    return ViTEncoder(path, threads=threads)


@register_encoder(
    "text/bert",
    dim=768,
    weights="local path (Hugging Face BERT folder)",
    needs_path=True,
    description="the paper's bert-base-chinese, mean of the last layer",
)
def bert(path: str, threads: int = 1) -> BertEncoder:
    return BertEncoder(path, threads=threads)


@register_encoder(
    "audio/vggish",
    dim=128,
    weights="local path (torchvggish .pth state dict)",
    needs_path=True,
    description="the paper's VGGish, one vector per 0.96 s",
)
def vggish(path: str, threads: int = 1) -> VGGishEncoder:
    return VGGishEncoder(path, threads=threads)
