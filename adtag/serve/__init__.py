"""The HTTP service: ``adtag serve`` answers tag requests for uploaded videos or extracted modalities."""

from adtag.serve.app import create_app
from adtag.serve.service import ServeConfig, TaggingService

__all__ = ["ServeConfig", "TaggingService", "create_app"]
