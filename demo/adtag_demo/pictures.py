"""Real photographs that installed packages ship, so 'live action' clips hold real pixels.

scikit-learn ships two photos (a temple among trees, a flower); matplotlib ships a portrait
(Grace Hopper), a photo of a gift pack and a terrain elevation map that we shade into an
aerial landscape. Each source is optional: a missing one just leaves its category smaller,
and the drawn scenes still carry the tag.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image


def _sklearn_photos() -> dict[str, np.ndarray]:
    try:
        from sklearn.datasets import load_sample_image
    except ImportError:
        return {}
    out = {}
    for name in ("china.jpg", "flower.jpg"):
        try:
            out[name] = np.asarray(load_sample_image(name), dtype=np.uint8)
        except (OSError, ValueError):
            continue
    return out


def _mpl_sample(name: str) -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.get_data_path()) / "sample_data" / name
    return path if path.is_file() else None


def _mpl_photo(name: str) -> np.ndarray | None:
    path = _mpl_sample(name)
    if path is None:
        return None
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _terrain() -> np.ndarray | None:
    """matplotlib's topobathy elevation, hill-shaded with the 'terrain' colour map."""
    path = _mpl_sample("topobathy.npz")
    if path is None:
        return None
    import matplotlib
    from matplotlib.colors import LightSource

    with np.load(path) as data:
        z = data["topo"] if "topo" in data else data[data.files[0]]
    z = np.asarray(z, dtype=float)
    rgb = LightSource(azdeg=315, altdeg=40).shade(
        z, cmap=matplotlib.colormaps["terrain"], blend_mode="soft", vert_exag=0.05
    )
    return (rgb[..., :3] * 255).astype(np.uint8)


@lru_cache(maxsize=1)
def real_pictures() -> dict[str, list[np.ndarray]]:
    """Photos by category: ``nature``, ``person`` and ``package`` (a product box)."""
    sk = _sklearn_photos()
    out: dict[str, list[np.ndarray]] = {"nature": [], "person": [], "package": []}
    out["nature"] += [sk[k] for k in ("china.jpg", "flower.jpg") if k in sk]
    for category, picture in (
        ("nature", _terrain()),
        ("person", _mpl_photo("grace_hopper.jpg")),
        ("package", _mpl_photo("Minduka_Present_Blue_Pack.png")),
    ):
        if picture is not None:
            out[category].append(picture)
    return out


def fit(picture: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``picture`` with the target aspect, resized to ``width`` x ``height``."""
    ph, pw = picture.shape[:2]
    target = width / height
    scale = rng.uniform(0.75, 1.0)
    if pw / ph > target:
        ch = int(ph * scale)
        cw = int(ch * target)
    else:
        cw = int(pw * scale)
        ch = int(cw / target)
    cw, ch = max(1, min(cw, pw)), max(1, min(ch, ph))
    x = int(rng.integers(0, pw - cw + 1))
    y = int(rng.integers(0, ph - ch + 1))
    crop = Image.fromarray(picture[y : y + ch, x : x + cw])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop.resize((width, height), Image.Resampling.BILINEAR))
