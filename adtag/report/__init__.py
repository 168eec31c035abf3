"""The self-contained HTML report of a run: ablation tables, charts, PR curve, gallery."""

from adtag.report.html import render_report
from adtag.report.thumbnails import thumbnail_strip

__all__ = ["render_report", "thumbnail_strip"]
