"""Extraction orchestration and the feature store: videos -> per-modality arrays -> a manifest.

Public entry points:

- ``adtag.features.extract.extract_video(path, encoders=None, language=None, timings=None) -> Item``
- ``adtag.features.extract.extract_to_dir(inputs, out_dir, ...) -> (manifest path | None, failures)``
- ``adtag.features.extract.DEFAULT_ENCODERS``: the role -> encoder mapping a model's config records
- ``adtag.features.store.manifest_encoders(manifest)``: the encoders an extracted manifest used
"""
