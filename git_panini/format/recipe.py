"""The recipe: a pack's JSON description of how to decode its data and which chunks it yields."""

from __future__ import annotations

import json

MAX_RECIPE_SIZE = 64 << 20
RECIPE_FORMAT = "git-panini-recipe/1"
# A pack whose codec matches against another pack's decoded bytes (a delta against an earlier version):
# "base" names that pack, which has no base itself. Clients that read only /1 refuse it as unknown.
DELTA_RECIPE_FORMAT = "git-panini-recipe/2"
# Decoded bytes of one pack. A worker's segments stay under 32 MiB (segment.WHOLE_FILE_MAX); a larger
# claim is a decompression bomb, refused before any decoder allocates for it.
MAX_PACK_SIZE = 64 << 20
# A transform step may first grow a segment: deflate-expand adds at most its max_expand (256 MiB).
MAX_STEP_SIZE = MAX_PACK_SIZE + (256 << 20)


class RecipeError(ValueError):
    pass


def parse_recipe(data: bytes, hex_len: int) -> dict:
    if len(data) > MAX_RECIPE_SIZE:
        raise RecipeError("recipe is larger than any real one")
    try:
        recipe = json.loads(data)
    except ValueError:
        raise RecipeError("recipe is not valid JSON") from None
    if not isinstance(recipe, dict) or recipe.get("format") not in (RECIPE_FORMAT, DELTA_RECIPE_FORMAT):
        form = recipe.get("format") if isinstance(recipe, dict) else None
        if isinstance(form, str) and form.startswith("git-panini-recipe/"):
            raise RecipeError(f"recipe format {form[:40]} is newer than this git-panini reads: upgrade it")
        raise RecipeError("recipe has an unknown format")
    base = recipe.get("base")
    if (recipe["format"] == DELTA_RECIPE_FORMAT) != (base is not None) or (base is not None and not _is_oid(base, hex_len)):
        raise RecipeError("recipe names no valid base pack, or one where its format has none")
    chunks = recipe.get("chunks")
    size = recipe.get("size")
    if not isinstance(size, int) or size < 0 or not isinstance(chunks, list):
        raise RecipeError("recipe lacks a valid size or chunk list")
    if size > MAX_PACK_SIZE:
        raise RecipeError(f"recipe claims {size} bytes, more than a pack may hold ({MAX_PACK_SIZE})")
    encoded_size = recipe.get("encoded_size")
    if encoded_size is not None and (type(encoded_size) is not int or encoded_size < 0):
        raise RecipeError("recipe has an invalid encoded size")
    data, deps = recipe.get("data"), recipe.get("deps", [])
    if not _is_oid(data, hex_len) or not isinstance(deps, list) or not all(_is_oid(d, hex_len) for d in deps):
        raise RecipeError("recipe names no valid data blob or dictionaries")
    steps = recipe.get("steps")
    for step in steps if isinstance(steps, list) else ():
        if isinstance(step, dict) and isinstance(step.get("size"), int) and step["size"] > MAX_STEP_SIZE:
            raise RecipeError(f"recipe step claims {step['size']} bytes, more than a step may produce ({MAX_STEP_SIZE})")
    claimed = 0
    for entry in chunks:
        if (not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str)
                or len(entry[0]) != hex_len or not all(isinstance(v, int) and v >= 0 for v in entry[1:])
                or entry[1] + entry[2] > size):
            raise RecipeError("recipe has a malformed chunk entry")
        claimed += entry[2]
    # A worker lays a segment's chunks end to end: entries claiming more bytes than the data holds overlap,
    # which only a forged recipe does (to be chosen over honest packs for every chunk it names).
    if claimed > size:
        raise RecipeError(f"recipe's chunks claim {claimed} bytes of a {size}-byte pack")
    return recipe


def _is_oid(value, hex_len: int) -> bool:
    return isinstance(value, str) and len(value) == hex_len and all(c in "0123456789abcdef" for c in value)
