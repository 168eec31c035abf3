"""The built-in ad corpus behind ``adtag demo``: short generated ads whose tags leave evidence
in pixels, captions and sound, so the whole pipeline can be shown working offline."""

from adtag_demo.corpus import corpus_notes, generate_corpus, read_corpus_info

__all__ = ["corpus_notes", "generate_corpus", "read_corpus_info"]
