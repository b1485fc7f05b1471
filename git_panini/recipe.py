"""The recipe: a pack's JSON description of how to decode its data and which chunks it yields."""

from __future__ import annotations

import json

MAX_RECIPE_SIZE = 64 << 20
RECIPE_FORMAT = "git-panini-recipe/1"


class RecipeError(ValueError):
    pass


def parse_recipe(data: bytes, hex_len: int) -> dict:
    if len(data) > MAX_RECIPE_SIZE:
        raise RecipeError("recipe is larger than any real one")
    try:
        recipe = json.loads(data)
    except ValueError:
        raise RecipeError("recipe is not valid JSON") from None
    if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_FORMAT:
        raise RecipeError("recipe has an unknown format")
    chunks = recipe.get("chunks")
    size = recipe.get("size")
    if not isinstance(size, int) or size < 0 or not isinstance(chunks, list):
        raise RecipeError("recipe lacks a valid size or chunk list")
    for entry in chunks:
        if (not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str)
                or len(entry[0]) != hex_len or not all(isinstance(v, int) and v >= 0 for v in entry[1:])
                or entry[1] + entry[2] > size):
            raise RecipeError("recipe has a malformed chunk entry")
    return recipe


def read_recipe_chunks(repo, pack_tree: str) -> list[tuple[str, int, int]]:
    """(chunk, offset, length) of a pack; an unreadable recipe yields nothing (verify reports it)."""
    entries = {e.name: e for e in repo.read_tree(pack_tree)}
    recipe = entries.get("recipe")
    data = repo.read_kind(recipe.oid, "blob") if recipe else None
    if data is None:
        return []
    try:
        return [tuple(c) for c in parse_recipe(data, repo.hex_len)["chunks"]]
    except RecipeError:
        return []
