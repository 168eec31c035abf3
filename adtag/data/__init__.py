"""Data contract: manifests, the TAAC-2021 layout and the tag vocabulary."""

from adtag.data.manifest import Item, load_manifest, read_items, write_manifest
from adtag.data.vocab import Vocabulary

__all__ = ["Item", "Vocabulary", "load_manifest", "read_items", "write_manifest"]
