"""What an ad says: bilingual caption lines and English spoken lines, per tag.

One phrase bank serves both captions (drawn, read back by OCR) and the voice-over (spoken,
read back by ASR), but each channel picks its lines independently from the tags it carries,
so captions and speech can agree, complement or contradict each other, as in real ads.
"""

from __future__ import annotations

import numpy as np

# tag key -> [(caption "中文 English", spoken English)]
PHRASES: dict[str, list[tuple[str, str]]] = {
    "cosmetics": [
        ("口红 LIPSTICK", "this lipstick keeps your lips soft all day"),
        ("精华液 SERUM", "our new serum makes your skin glow"),
        ("水润保湿 HYDRATING", "deep hydration for dry skin"),
        ("美妆新品 NEW MAKEUP", "try the new makeup collection"),
    ],
    "food": [
        ("奶茶 MILK TEA", "a fresh cup of milk tea"),
        ("牛肉面 NOODLES", "hot beef noodles, ready in minutes"),
        ("汉堡 BURGER", "a juicy burger for lunch"),
        ("新鲜美味 FRESH & TASTY", "fresh and tasty food every day"),
    ],
    "electronics": [
        ("手机 PHONE", "the new phone has a battery that lasts all week"),
        ("无线耳机 EARBUDS", "wireless earbuds with crystal clear sound"),
        ("笔记本电脑 LAPTOP", "a light laptop for work and play"),
        ("超长续航 BATTERY", "charge once and keep going"),
    ],
    "game": [
        ("开始游戏 PLAY NOW", "download the game and play now"),
        ("第1关 LEVEL 1", "can you beat the first level"),
        ("得分 SCORE 9999", "get the highest score"),
    ],
    "promotion": [
        ("限时优惠 LIMITED OFFER", "limited time offer"),
        ("五折 50% OFF", "fifty percent off, today only"),
        ("立即抢购 BUY NOW", "buy now and save big"),
        ("¥99 包邮 FREE SHIPPING", "free shipping on every order"),
    ],
    "tutorial": [
        ("第一步 STEP 1", "step one, open the box"),
        ("第二步 STEP 2", "step two, press the button"),
        ("第三步 STEP 3", "step three, enjoy the result"),
    ],
    "funny": [
        ("哈哈哈 LOL", "ha ha ha"),
        ("笑死了 SO FUNNY", "that is so funny"),
        ("意外 OOPS", "oops"),
    ],
    "story": [
        ("", "hi, how was your day"),
        ("", "it was a long day, until I found this"),
        ("", "really? show me"),
        ("", "you have to try it"),
    ],
}
FILLER: list[tuple[str, str]] = [
    ("欢迎观看 WELCOME", "welcome back"),
    ("今日推荐 TODAY'S PICK", "here is today's pick"),
    ("一起来看 LET'S SEE", "let's take a look"),
    ("关注我们 FOLLOW US", "follow us for more"),
    ("好物分享 GOOD STUFF", "you will love it"),
]
ORDERED = frozenset({"tutorial", "story"})  # their lines keep their order


def lines_for(keys: list[str], rng: np.random.Generator, n: int, caption: bool) -> list[str]:
    """``n`` lines mixing the phrases of ``keys`` with filler: captions or spoken text."""
    col = 0 if caption else 1
    pool: list[str] = []
    for key in keys:
        phrases = [p[col] for p in PHRASES.get(key, []) if p[col]]
        if not phrases:
            continue
        if key in ORDERED:
            pool += phrases[: max(2, n)]
        else:
            pool += [phrases[i] for i in rng.permutation(len(phrases))[:2]]
    fill = [p[col] for p in FILLER]
    fill = [fill[i] for i in rng.permutation(len(fill))]
    out = pool[:n]
    while len(out) < n and fill:
        out.insert(int(rng.integers(0, len(out) + 1)) if not (set(keys) & ORDERED) else len(out), fill.pop())
    return out
