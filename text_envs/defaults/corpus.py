"""A seeded grammar of short English reviews: the corpus of the embedded default LM and prompts.

Written for this project (no third-party text, MIT-licensed with the code). A review talks about
one *topic* (a film, a book, a restaurant, a hotel, a video game or an album) and its aspects in
two to four sentences of mostly one *sentiment*, positive or negative, with an occasional mixed
sentence, so a model trained on it writes English-like reviews of either polarity. That is the
default RLHF task: steer the continuation of a neutral opening towards a positive review.

Every function takes a :class:`numpy.random.Generator`, so a seed fixes the text exactly.
"""

from __future__ import annotations

import numpy as np

TOPICS: dict[str, dict[str, list[str]]] = {
    "film": {
        "names": ["movie", "film"],
        "aspects": [
            "acting",
            "plot",
            "story",
            "music",
            "ending",
            "dialogue",
            "pacing",
            "cast",
            "script",
            "camera work",
        ],
        "verbs": ["watched", "saw"],
        "places": ["at the cinema", "at home", "on a rainy evening", "with my family", "last weekend"],
    },
    "book": {
        "names": ["book", "novel"],
        "aspects": ["writing", "story", "characters", "ending", "first chapter", "prose", "plot", "dialogue"],
        "verbs": ["read", "finished"],
        "places": ["on holiday", "in two evenings", "on the train", "last month", "for my book club"],
    },
    "restaurant": {
        "names": ["restaurant", "place", "cafe"],
        "aspects": [
            "food",
            "service",
            "staff",
            "menu",
            "dessert",
            "soup",
            "wine list",
            "atmosphere",
            "bread",
            "coffee",
        ],
        "verbs": ["visited", "tried"],
        "places": ["for lunch", "for dinner", "on a friday night", "with friends", "for a birthday"],
    },
    "hotel": {
        "names": ["hotel", "inn"],
        "aspects": ["room", "staff", "breakfast", "bed", "view", "location", "pool", "bathroom", "reception"],
        "verbs": ["stayed at", "booked"],
        "places": ["for three nights", "for a weekend", "on a business trip", "last summer", "with my partner"],
    },
    "game": {
        "names": ["game", "video game"],
        "aspects": ["graphics", "controls", "levels", "story", "music", "multiplayer", "puzzles", "boss fights"],
        "verbs": ["played", "tried"],
        "places": ["all weekend", "with my brother", "for ten hours", "on my laptop", "after work"],
    },
    "album": {
        "names": ["album", "record"],
        "aspects": ["songs", "lyrics", "vocals", "production", "melodies", "guitar", "opening track", "drums"],
        "verbs": ["heard", "listened to"],
        "places": ["on repeat", "in the car", "on my headphones", "at a friend's house", "on release day"],
    },
}

ADJECTIVES = {
    "positive": [
        "wonderful",
        "great",
        "excellent",
        "delightful",
        "charming",
        "brilliant",
        "lovely",
        "superb",
        "fantastic",
        "pleasant",
        "beautiful",
        "clever",
        "moving",
        "fresh",
        "warm",
        "memorable",
        "impressive",
        "perfect",
        "fun",
        "stunning",
    ],
    "negative": [
        "terrible",
        "awful",
        "boring",
        "dull",
        "bland",
        "disappointing",
        "poor",
        "weak",
        "messy",
        "slow",
        "forgettable",
        "horrible",
        "clumsy",
        "tedious",
        "cold",
        "stale",
        "annoying",
        "painful",
        "lifeless",
        "mediocre",
    ],
}
VERBS = {
    "positive": ["loved", "enjoyed", "liked", "adored", "appreciated"],
    "negative": ["hated", "disliked", "regretted", "could not stand", "did not enjoy"],
}
RECOMMEND = {
    "positive": [
        "recommend it to anyone",
        "happily go back",
        "gladly pay for it again",
        "tell all my friends about it",
    ],
    "negative": ["not recommend it to anyone", "never go back", "ask for my money back", "warn my friends about it"],
}
CLOSERS = {
    "positive": ["what a treat.", "five stars from me.", "i can't wait to go back.", "it made my week."],
    "negative": ["what a waste.", "one star from me.", "never again.", "it ruined my week."],
}
INTENSIFIERS = ["", "", "really ", "very ", "truly ", "quite ", "absolutely ", "rather "]
OPENERS = [
    "honestly,",
    "to be fair,",
    "from the start,",
    "i have to say",
    "in the end,",
    "for me,",
    "sadly,",
    "happily,",
]
PEOPLE = ["my parents", "a friend", "my sister", "a colleague", "some neighbours"]
SENTIMENTS = ("positive", "negative")


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _be(noun: str) -> str:
    """``were`` for the plural aspects (all of which end in s), ``was`` otherwise."""
    return "were" if noun.endswith("s") else "was"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def opening(rng: np.random.Generator, topic: str) -> str:
    """A neutral first clause that leaves the sentiment open, e.g. ``"we tried this cafe for lunch and the"``."""
    t = TOPICS[topic]
    name, aspect = _pick(rng, t["names"]), _pick(rng, t["aspects"])
    forms = [
        f"i {_pick(rng, t['verbs'])} this {name} {_pick(rng, t['places'])} and the",
        f"the {aspect} of this {name}",
        f"we {_pick(rng, t['verbs'])} this {name} {_pick(rng, t['places'])}.",
        f"{_pick(rng, OPENERS)} the {aspect}",
        f"my review of this {name}: the",
        f"after all the talk about this {name}, the {aspect}",
    ]
    return _pick(rng, forms)


def sentence(rng: np.random.Generator, topic: str, sentiment: str) -> str:
    """One sentence about ``topic`` carrying ``sentiment``."""
    t = TOPICS[topic]
    other = SENTIMENTS[1 - SENTIMENTS.index(sentiment)]
    name, aspect, aspect2 = _pick(rng, t["names"]), _pick(rng, t["aspects"]), _pick(rng, t["aspects"])
    adj, adj2 = _pick(rng, ADJECTIVES[sentiment]), _pick(rng, ADJECTIVES[sentiment])
    forms = [
        f"the {aspect} {_be(aspect)} {_pick(rng, INTENSIFIERS)}{adj}.",
        f"i {_pick(rng, VERBS[sentiment])} the {aspect}, and the {aspect2} {_be(aspect2)} {adj} too.",
        f"overall, this {name} is {adj} and i would {_pick(rng, RECOMMEND[sentiment])}.",
        f"{_pick(rng, OPENERS)} the {aspect} felt {_pick(rng, INTENSIFIERS)}{adj}.",
        f"it is {_article(adj)} {adj} {name} with {_article(adj2)} {adj2} {aspect}.",
        f"the {aspect} {_be(aspect)} {adj}, but the {aspect2} {_be(aspect2)} {_pick(rng, ADJECTIVES[other])}.",
        f"i {_pick(rng, VERBS[sentiment])} every minute of it.",
        _pick(rng, CLOSERS[sentiment]),
        f"i would {_pick(rng, RECOMMEND[sentiment])}, and so would {_pick(rng, PEOPLE)}.",
    ]
    return _pick(rng, forms)


def review(rng: np.random.Generator, topic: str | None = None, sentiment: str | None = None) -> tuple[str, str]:
    """A whole review and its sentiment: a neutral opening completed into 2-4 sentences."""
    topic = topic or _pick(rng, list(TOPICS))
    sentiment = sentiment or _pick(rng, list(SENTIMENTS))
    start = opening(rng, topic)
    if start.endswith("."):
        body = [start, sentence(rng, topic, sentiment)]
    else:
        adj = _pick(rng, ADJECTIVES[sentiment])
        if start.endswith(" the"):  # the opening stops at an article: name the aspect first
            aspect = _pick(rng, TOPICS[topic]["aspects"])
            start = f"{start} {aspect}"
        else:
            aspect = start.split(" ")[-1]
        body = [f"{start} {_be(aspect)} {_pick(rng, INTENSIFIERS)}{adj}."]
    body += [sentence(rng, topic, sentiment) for _ in range(int(rng.integers(1, 4)))]
    return " ".join(body), sentiment


def reviews(seed: int, count: int) -> list[tuple[str, str]]:
    """``count`` reviews with their sentiments, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    return [review(rng) for _ in range(count)]


def prompts(seed: int, count: int) -> list[str]:
    """``count`` distinct neutral openings (duplicates are skipped), fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen.setdefault(opening(rng, _pick(rng, list(TOPICS))), None)
    return list(seen)
