"""Extraction orchestration and the feature store: videos -> per-modality arrays -> a manifest."""
