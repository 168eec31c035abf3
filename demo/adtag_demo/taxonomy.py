"""The demo taxonomy: 26 bilingual tags in four groups, each naming where its evidence lives.

Modelled on TAAC-2021's tag groups (scene, style, presentation, product/narrative). A tag's
``channels`` say which modalities the generator may put its evidence into; the first one is
its primary channel, kept most of the time, the others are dropped more often so that the
modalities disagree and fusion has something to do.

Channels, and what the extraction pipeline reads them with:

- ``visual``: drawn scenes and objects, real photos, colour grades, motion (frame embeddings);
- ``text``: rendered captions and product text, Chinese and English (OCR);
- ``speech``: spoken lines from a text-to-speech engine (ASR text and audio embeddings);
- ``music``: synthesised music whose instruments and tempo follow the style (audio embeddings);
- ``sound``: non-music sound such as traffic, birdsong, cartoon effects, vinyl crackle (audio).
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS = ("visual", "text", "speech", "music", "sound")
AUDIO_CHANNELS = frozenset({"speech", "music", "sound"})


@dataclass(frozen=True)
class Tag:
    """One tag: its bilingual name, group, and the channels that may carry its evidence."""

    key: str  # short ASCII handle used in code
    name: str  # "中文/english", the label written to the manifest
    group: str
    channels: tuple[str, ...]


SCENE = "场景/scene"
STYLE = "风格/style"
PRESENTATION = "呈现/presentation"
PRODUCT = "商品与叙事/product & narrative"
GROUPS = (SCENE, STYLE, PRESENTATION, PRODUCT)

TAGS: tuple[Tag, ...] = (
    Tag("indoor", "室内/indoor", SCENE, ("visual",)),
    Tag("outdoor", "室外/outdoor", SCENE, ("visual",)),
    Tag("city", "城市/city", SCENE, ("visual", "sound")),
    Tag("nature", "自然风光/nature", SCENE, ("visual", "sound")),
    Tag("night", "夜景/night", SCENE, ("visual",)),
    Tag("warm", "温馨/warm", STYLE, ("visual", "music")),
    Tag("tech", "科技感/tech", STYLE, ("visual", "music")),
    Tag("funny", "搞笑/funny", STYLE, ("visual", "sound", "text")),
    Tag("premium", "高级感/premium", STYLE, ("visual", "music")),
    Tag("energetic", "动感/energetic", STYLE, ("visual", "music")),
    Tag("vintage", "复古/vintage", STYLE, ("visual", "sound")),
    Tag("subtitles", "字幕/subtitles", PRESENTATION, ("text",)),
    Tag("person", "真人出镜/on-camera person", PRESENTATION, ("visual",)),
    Tag("voiceover", "配音/voice-over", PRESENTATION, ("speech",)),
    Tag("music", "背景音乐/background music", PRESENTATION, ("music",)),
    Tag("animation", "动画/animation", PRESENTATION, ("visual",)),
    Tag("live", "实拍/live action", PRESENTATION, ("visual",)),
    Tag("split", "分屏/split screen", PRESENTATION, ("visual",)),
    Tag("closeup", "产品特写/product close-up", PRESENTATION, ("visual",)),
    Tag("cosmetics", "美妆/cosmetics", PRODUCT, ("visual", "text", "speech")),
    Tag("food", "食品饮料/food & drink", PRODUCT, ("visual", "text", "speech")),
    Tag("electronics", "数码/electronics", PRODUCT, ("visual", "text", "speech")),
    Tag("game", "游戏/game", PRODUCT, ("visual", "text", "music")),
    Tag("promotion", "促销/promotion", PRODUCT, ("text", "speech", "visual")),
    Tag("tutorial", "教程/tutorial", PRODUCT, ("text", "speech")),
    Tag("story", "剧情/story", PRODUCT, ("visual", "speech")),
)

BY_KEY: dict[str, Tag] = {t.key: t for t in TAGS}
BY_NAME: dict[str, Tag] = {t.name: t for t in TAGS}
PRODUCTS = ("cosmetics", "food", "electronics", "game")
STYLES = ("warm", "tech", "funny", "premium", "energetic", "vintage")


def vocab_lines() -> list[str]:
    """``tag<TAB>id`` lines in taxonomy order, the layout of TAAC's ``label_id.txt``."""
    return [f"{t.name}\t{i}" for i, t in enumerate(TAGS)]
