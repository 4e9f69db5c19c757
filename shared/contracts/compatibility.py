"""Is a new JSON Schema of an event version backward compatible with the committed one?

Events are never rewritten: the log keeps every event as it was written, and replays and new
consumers read it from offset 0. So the current model of a version must still accept every event
that was valid under the committed schema of that version. `incompatibilities` lists the ways it
might not, as "where: what" lines; an empty list means the change is safe.

It compares the two schemas structurally (what pydantic generates: objects, `anyOf` unions,
enums, consts, string and number bounds, arrays, `$ref`s into `$defs`) and errs on the side of
reporting: a change it cannot prove harmless is listed."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# Bounds that reject more when they go down (max*) or up (min*), per JSON Schema keyword.
UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
# Constraints that are not ordered: any new or changed value may refuse what the old accepted.
EXACT = ("pattern", "format", "multipleOf")


def incompatibilities(old: Schema, new: Schema) -> list[str]:
    """Why an instance valid under `old` might be invalid under `new` (empty: backward compatible)."""
    return _Comparison(old, new).compare(old, new, "", frozenset())


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema):
        self.roots = {"old": old_root, "new": new_root}

    def resolve(self, schema: Any, side: str) -> Schema:
        """Follow `$ref`s (`#/$defs/Name`, or any JSON pointer into the same document)."""
        seen = set()
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen or not ref.startswith("#"):
                raise ValueError(f"cannot resolve $ref {ref!r}")
            seen.add(ref)
            target: Any = self.roots[side]
            for part in filter(None, ref[1:].split("/")):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = target
        if schema is True:
            return {}
        return schema

    def compare(self, old: Any, new: Any, path: str, seen: frozenset) -> list[str]:
        # Recursive models refer to themselves: a pair of refs already being compared is assumed
        # compatible here, and any difference is reported where it first occurs.
        pair = (_ref(old), _ref(new))
        if pair != (None, None):
            if pair in seen:
                return []
            seen = seen | {pair}
        old, new = self.resolve(old, "old"), self.resolve(new, "new")
        if new is False or old is False:
            return [] if old is False else [f"{_where(path)}: nothing is accepted any more"]
        old_branches, new_branches = self.branches(old, "old"), self.branches(new, "new")
        if len(old_branches) == 1 and len(new_branches) == 1:
            return self.compare_one(old_branches[0], new_branches[0], path, seen)
        # A union: every kind of value the old schema took must still be taken by some branch of
        # the new one. When none takes it, explain with the closest branch (same JSON type first).
        problems: list[str] = []
        for branch in old_branches:
            attempts = [
                (not _overlap(branch, candidate), self.compare_one(branch, candidate, path, seen))
                for candidate in new_branches
            ]
            if not any(not found for _, found in attempts):
                problems.extend(min(attempts, key=lambda attempt: (attempt[0], len(attempt[1])))[1])
        return _unique(problems)

    def branches(self, schema: Schema, side: str) -> list[Schema]:
        """The alternatives of a schema (`anyOf`/`oneOf`, flattened), or the schema itself.
        Keywords beside the union apply to every alternative (pydantic puts a field's
        `maxLength` there for `str | Withheld`), so each alternative gets them."""
        options = schema.get("anyOf") or schema.get("oneOf")
        if not options:
            return [schema]
        beside = {key: value for key, value in schema.items() if key not in ("anyOf", "oneOf")}
        found = []
        for option in options:
            found.extend(self.branches({**beside, **self.resolve(option, side)}, side))
        return found

    def compare_one(self, old: Schema, new: Schema, path: str, seen: frozenset) -> list[str]:
        where = _where(path)
        old_types, new_types = _types(old), _types(new)
        if new_types is not None:
            if old_types is None:
                return [f"{where}: now only {_names(new_types)} (anything was accepted)"]
            lost = {kind for kind in old_types if not _accepts(new_types, kind)}
            if lost:
                return [f"{where}: type {_names(old_types)} narrowed to {_names(new_types)}"]
        problems = []
        old_values, new_values = _values(old), _values(new)
        if new_values is not None:
            if old_values is None:
                problems.append(f"{where}: now only the values {_show(new_values)}")
            elif removed := [value for value in old_values if value not in new_values]:
                problems.append(f"{where}: value(s) {_show(removed)} no longer accepted")
        for keyword in UPPER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
                problems.append(f"{where}: {keyword} tightened from {old.get(keyword, 'none')} to {new[keyword]}")
        for keyword in LOWER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
                problems.append(f"{where}: {keyword} tightened from {old.get(keyword, 'none')} to {new[keyword]}")
        for keyword in EXACT:
            if keyword in new and new[keyword] != old.get(keyword):
                problems.append(f"{where}: {keyword} changed from {old.get(keyword, 'none')!r} to {new[keyword]!r}")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            problems.append(f"{where}: items must now be unique")
        if "object" in (old_types or set()) | (new_types or set()):
            problems += self.compare_objects(old, new, path, seen)
        if "items" in old or "items" in new:
            problems += self.compare(old.get("items", {}), new.get("items", {}), f"{path}[]", seen)
        return problems

    def compare_objects(self, old: Schema, new: Schema, path: str, seen: frozenset) -> list[str]:
        old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
        problems = []
        # Old events may lack a field the old schema did not require (or did not have).
        for name in sorted(new_required - old_required):
            problems.append(f"{_where(_join(path, name))}: now required (events written before may lack it)")
        for name in sorted(old_fields):
            if name in new_fields:
                problems += self.compare(old_fields[name], new_fields[name], _join(path, name), seen)
            elif new_extra is False:
                # extra="forbid": an old event that carries the field is refused outright.
                problems.append(f"{_where(_join(path, name))}: removed (events that carry it are refused)")
            else:
                problems += self.compare(old_fields[name], new_extra, _join(path, name), seen)
        if old_extra is not False:
            if new_extra is False:
                problems.append(f"{_where(path)}: other members no longer accepted")
            elif new_extra is not True:
                problems += self.compare(old_extra, new_extra, _join(path, "*"), seen)
        return problems


def _ref(schema: Any) -> str | None:
    return schema.get("$ref") if isinstance(schema, dict) else None


def _types(schema: Schema) -> set[str] | None:
    """The JSON types a schema admits, or None when it does not restrict them."""
    if "type" in schema:
        kinds = schema["type"]
        return set(kinds) if isinstance(kinds, list) else {kinds}
    values = _values(schema)
    if values is not None:
        return {_json_type(value) for value in values}
    if "properties" in schema:
        return {"object"}
    return None


def _values(schema: Schema) -> list | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def _accepts(types: set[str], kind: str) -> bool:
    return kind in types or (kind == "integer" and "number" in types)


def _overlap(old: Schema, new: Schema) -> bool:
    old_types, new_types = _types(old), _types(new)
    return old_types is None or new_types is None or any(_accepts(new_types, kind) for kind in old_types)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _names(types: set[str]) -> str:
    return "|".join(sorted(types))


def _show(values: list) -> str:
    return ", ".join(repr(value) for value in values)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return path or "<root>"


def _unique(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))
