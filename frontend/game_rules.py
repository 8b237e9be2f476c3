"""The Challenge's rules, apart from its page: which categories a game asks for, and when a round is won."""

from __future__ import annotations

import random

# A category's chance to be asked grows with how often the model recognises it (its validation
# recall), never below this floor: every category comes up, the hopeless ones rarely.
MIN_WEIGHT = 0.05


def pick_prompts(spec: dict, rounds: int, rng: random.Random | None = None) -> list[str]:
    """``rounds`` categories among all the model plays, likelier the more recognisable, the easiest first."""
    rng = rng or random.Random()
    prompts, recall = spec["prompts"], spec["recall"]
    weights = [max(r, MIN_WEIGHT) ** 2 for r in recall]
    chosen: set[int] = set()
    while len(chosen) < min(rounds, len(prompts)):
        chosen.add(rng.choices(range(len(prompts)), weights)[0])
    return [prompts[i] for i in sorted(chosen)]  # the spec lists them most recognisable first


def is_win(prompt: str, predictions: list[dict], threshold: float) -> bool:
    """The model says "I know" once the prompt's probability reaches the model's threshold."""
    return any(p["label"] == prompt and p["probability"] >= threshold for p in predictions)
