"""adtag: multimodal video-ad tagging (branches -> out-of-fold meta-features -> stacker)."""

__version__ = "0.1.0"
