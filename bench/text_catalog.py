"""A large synthetic catalog with product-like texts, embedded once by the configured model and cached.

Random unit vectors are the worst case for an HNSW graph (every point is nearly equidistant from every
other in 384 dimensions); product texts embed into clusters along categories, product kinds and
attributes. No 100k-product text catalog ships with this repository or on PyPI, so the texts are composed
from vocabularies per category (kinds, materials, features, uses) with brands, colours and sizes; the
vectors are the real model's. Embedding 100k texts takes minutes, so the vectors are cached under
``data/bench/`` keyed by size, seed, model and backend.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS: dict[str, list[str]] = {
    "Home > Kitchen": [
        "chef's knife",
        "cutting board",
        "saucepan",
        "frying pan",
        "coffee grinder",
        "kettle",
        "blender",
        "mixing bowl set",
        "cast iron skillet",
        "spice rack",
        "toaster",
        "french press",
        "food storage jars",
    ],
    "Home > Garden": [
        "garden hose",
        "pruning shears",
        "watering can",
        "raised bed planter",
        "lawn rake",
        "seed tray",
        "garden gloves",
        "hose reel",
        "bird feeder",
        "compost bin",
        "solar path lights",
        "wheelbarrow",
    ],
    "Sports > Running": [
        "running shoes",
        "trail running shoes",
        "running jacket",
        "compression socks",
        "hydration vest",
        "running shorts",
        "GPS running watch",
        "reflective armband",
        "running cap",
        "foam roller",
    ],
    "Sports > Cycling": [
        "bike light set",
        "cycling helmet",
        "bike lock",
        "cycling gloves",
        "saddle bag",
        "floor pump",
        "bike computer",
        "cycling jersey",
        "water bottle cage",
        "mountain bike tyre",
        "chain lube",
    ],
    "Electronics > Audio": [
        "noise cancelling headphones",
        "wireless earbuds",
        "bluetooth speaker",
        "soundbar",
        "studio monitor",
        "turntable",
        "USB microphone",
        "portable radio",
        "headphone amplifier",
    ],
    "Electronics > Computers": [
        "laptop stand",
        "mechanical keyboard",
        "wireless mouse",
        "USB-C hub",
        "external SSD",
        "webcam",
        "27-inch monitor",
        "laptop sleeve",
        "docking station",
        "graphics tablet",
        "ergonomic chair",
    ],
    "Books > Fiction": [
        "crime novel",
        "fantasy saga",
        "science fiction novel",
        "historical romance",
        "short story collection",
        "literary thriller",
        "graphic novel",
        "poetry anthology",
        "young adult adventure",
        "ghost story",
    ],
    "Beauty > Skincare": [
        "face cream",
        "vitamin C serum",
        "sunscreen SPF 50",
        "cleansing gel",
        "night mask",
        "eye cream",
        "exfoliating toner",
        "lip balm",
        "hyaluronic moisturiser",
        "clay face mask",
        "body lotion",
    ],
    "Toys > Building": [
        "building blocks set",
        "magnetic tiles",
        "marble run",
        "wooden train set",
        "robot kit",
        "construction crane model",
        "dollhouse kit",
        "puzzle cube",
    ],
    "Pets > Dogs": [
        "dog bed",
        "chew toy",
        "dog leash",
        "dog harness",
        "grain-free dog food",
        "dog shampoo",
        "travel water bowl",
        "dog raincoat",
    ],
    "Office > Stationery": [
        "fountain pen",
        "dotted notebook",
        "desk organiser",
        "sticky notes",
        "highlighter set",
        "paper shredder",
        "label maker",
        "document wallet",
    ],
    "Fashion > Outerwear": [
        "rain jacket",
        "down parka",
        "wool coat",
        "softshell jacket",
        "fleece vest",
        "trench coat",
        "windbreaker",
        "quilted jacket",
    ],
}
MATERIALS = [
    "stainless steel",
    "bamboo",
    "recycled plastic",
    "leather",
    "cotton",
    "aluminium",
    "oak",
    "silicone",
    "merino wool",
    "ceramic",
    "glass",
    "nylon",
    "carbon fibre",
    "organic cotton",
    "cast iron",
]
ADJECTIVES = [
    "compact",
    "premium",
    "classic",
    "lightweight",
    "durable",
    "eco-friendly",
    "deluxe",
    "travel",
    "professional",
    "mini",
    "heavy-duty",
    "foldable",
    "waterproof",
    "ergonomic",
    "vintage",
    "smart",
]
COLOURS = ["red", "blue", "green", "black", "white", "grey", "orange", "purple", "beige", "navy"]
USES = [
    "for everyday use",
    "for beginners",
    "for professionals",
    "for small spaces",
    "for travel",
    "for families",
    "as a gift",
    "for outdoor use",
    "for long sessions",
    "for the weekend",
]
FEATURES = [
    "easy to clean",
    "two-year warranty",
    "made to last",
    "comes in a gift box",
    "tested by experts",
    "quiet operation",
    "fast delivery",
    "recyclable packaging",
    "adjustable fit",
    "non-slip base",
    "long battery life",
    "machine washable",
    "award-winning design",
    "ships fully assembled",
]
SYLLABLES = ["ka", "lo", "mi", "ra", "ven", "tor", "sa", "el", "no", "vi", "quin", "dar", "ze", "ul", "bro"]


@dataclass(frozen=True)
class TextProduct:
    title: str
    category: str
    brand: str
    text: str


def _brands(rng: random.Random, count: int = 300) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title())
    return sorted(names)


def text_products(count: int, seed: int = 7) -> list[TextProduct]:
    """``count`` products, each with a title and a two- or three-sentence description."""
    rng = random.Random(seed)
    brands = _brands(rng)
    categories = sorted(KINDS)
    products = []
    for _ in range(count):
        category = rng.choice(categories)
        kind = rng.choice(KINDS[category])
        brand = rng.choice(brands)
        title = f"{brand} {rng.choice(ADJECTIVES)} {kind} {rng.choice(COLOURS)} {rng.randint(1, 999)}"
        sentences = [
            f"A {rng.choice(ADJECTIVES)} {kind} in {rng.choice(MATERIALS)} {rng.choice(USES)}.",
            f"{rng.choice(FEATURES).capitalize()}, {rng.choice(FEATURES)}.",
        ]
        if rng.random() < 0.5:
            sentences.append(f"By {brand}, in {rng.choice(COLOURS)} or {rng.choice(COLOURS)}.")
        text = f"{title}. {' '.join(sentences)} Category: {category}. Brand: {brand}."
        products.append(TextProduct(title, category, brand, text))
    return products


def text_queries(count: int, seed: int = 8) -> list[str]:
    """Shopper-like queries over the same vocabulary (not product texts): HNSW recall probes."""
    rng = random.Random(seed)
    kinds = [kind for values in KINDS.values() for kind in values]
    return [
        f"{rng.choice(ADJECTIVES)} {rng.choice(kinds)} {rng.choice(USES)}"
        if rng.random() < 0.5
        else f"{rng.choice(COLOURS)} {rng.choice(MATERIALS)} {rng.choice(kinds)}"
        for _ in range(count)
    ]


def cached_vectors(texts: list[str], cache: Path, embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``embed(texts)`` once; later runs load the cached file (its name carries a hash of the texts)."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = cache.with_name(f"{cache.name}-{digest}.npy")
    if path.exists():
        return np.load(path)
    vectors = np.asarray(embed(texts), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp.npy")
    np.save(scratch, vectors)
    scratch.replace(path)
    return vectors
