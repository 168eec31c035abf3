"""Encoders, one registry: ``create_encoder(name)``, ``list_encoders(pattern)``, ``encoder_spec(name)``."""

from adtag.encoders.registry import (
    EncoderSpec,
    create_encoder,
    encoder_spec,
    list_encoders,
    prepare_encoder,
    register_encoder,
)

__all__ = ["EncoderSpec", "create_encoder", "encoder_spec", "list_encoders", "prepare_encoder", "register_encoder"]
