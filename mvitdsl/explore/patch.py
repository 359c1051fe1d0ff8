"""A reader's draft as data: where two drafts differ (`draft_delta`), and a copy of a draft with
such differences applied (`patch`), sharing what it does not touch. The sweep reads each value
once and patches its effect into the base's draft (explore/engine.py)."""

from __future__ import annotations

import copy
from dataclasses import fields, is_dataclass, replace
from typing import Any

Delta = tuple[tuple[Any, ...], Any]  # (where in the draft, the value the reader put there)


def draft_delta(before: Any, after: Any, where: tuple[Any, ...] = ()) -> list[Delta]:
    """Where two drafts differ: dataclass fields, list items and dict keys, down to the leaves."""
    if before == after:
        return []
    if is_dataclass(before) and type(before) is type(after) and not isinstance(before, type):
        return [
            d
            for f in fields(before)
            for d in draft_delta(getattr(before, f.name), getattr(after, f.name), (*where, f.name))
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d for i, (a, b) in enumerate(zip(before, after)) for d in draft_delta(a, b, (*where, i))
        ]
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            d
            for k in dict.fromkeys([*before, *after])
            for d in draft_delta(before.get(k), after.get(k), (*where, k))
        ]
    return [(where, after)]


def patch(
    draft: Any,
    deltas: list[Delta],
    memo: dict[Any, Any] | None = None,
    prefix: tuple[Any, ...] = (),
) -> Any:
    """A copy of the draft with each delta applied; the parts it does not touch are shared, and
    with a memo, so are list items and dict entries patched the same way before (read-only)."""
    if not deltas:
        return draft
    groups: dict[Any, list[Delta]] = {}
    for where, value in deltas:
        if not where:
            return value
        groups.setdefault(where[0], []).append((where[1:], value))
    if isinstance(draft, (list, dict)):
        new: Any = list(draft) if isinstance(draft, list) else dict(draft)
        for k, sub in groups.items():
            part = new[k] if isinstance(draft, list) else new.get(k)
            new[k] = _patched(part, sub, memo, (*prefix, k))
        return new
    changes = {k: patch(getattr(draft, k), sub, memo, (*prefix, k)) for k, sub in groups.items()}
    if (
        getattr(type(draft), "__dataclass_params__", None) is None
        or type(draft).__dataclass_params__.frozen
    ):
        return replace(draft, **changes)
    # a plain (not frozen) dataclass: a shallow copy is enough (its __dict__ copied: a few
    # times faster than copy.copy, which goes through __reduce_ex__)
    copied = object.__new__(type(draft)) if hasattr(draft, "__dict__") else copy.copy(draft)
    if hasattr(draft, "__dict__"):
        copied.__dict__.update(draft.__dict__)
    for k, v in changes.items():
        setattr(copied, k, v)
    return copied


def _patched(
    part: Any, sub: list[Delta], memo: dict[Any, Any] | None, prefix: tuple[Any, ...]
) -> Any:
    if memo is None:
        return patch(part, sub, None, prefix)
    try:
        key = (prefix, tuple(sub))
        hit = memo.get(key)
    except TypeError:  # an unhashable value: patch it afresh
        return patch(part, sub, None, prefix)
    if hit is None:
        hit = memo[key] = patch(part, sub, memo, prefix)
    return hit
