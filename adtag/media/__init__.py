"""Decoding: metadata, frames sampled at a fixed interval, and 16 kHz mono audio (PyAV, FFmpeg inside)."""

from adtag.media.audio import read_audio
from adtag.media.errors import MediaError
from adtag.media.frames import SampledFrame, iter_frames
from adtag.media.probe import MediaInfo, probe

__all__ = ["MediaError", "MediaInfo", "SampledFrame", "iter_frames", "probe", "read_audio"]
