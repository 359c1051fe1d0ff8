"""Sweeps over several bases (`mvitdsl sweep A.mv B.mv ...`): one SweepRun per base under shared
budgets, every row tagged with its base's name (`family`), and one joint Pareto front.

A --vary, --set or --where text may start with a base's name and a colon to apply to that base
only (`swin_t:scale4.blocks=2,6`); a text without one applies to every base that has its paths
(at least one must). For a base, a prefixed --vary or --set replaces an unprefixed one of the
same label. Rows keep their per-base `id`; the front and `summary.front` name a row
`family:id`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..catalog import shipped_path
from ..diagnostics import did_you_mean
from ..language.overrides import PathError, locate
from ..spec import Spec, load_spec
from .axes import Axis, AxisError, Derived, parse_set, parse_vary, text_of
from .expr import ExprError
from .pareto import Objective, RunningFront, flag_front, row_point
from .run import MAX_VARIANTS, Summary, SweepRun, read_join
from .sweepfile import paths_of, split_prefix

Kind = Literal["vary", "set", "where"]


def texts(kind: Kind, given: Mapping[Any, Any] | Sequence[str] | str) -> list[str]:
    """A --vary / --set / --where argument of the API, as the command line's texts."""
    if isinstance(given, str):
        return [given]
    if not isinstance(given, Mapping):
        return list(given)
    out = []
    for key, value in given.items():
        label = ",".join(key) if isinstance(key, tuple) else str(key)
        if kind == "vary" and not isinstance(value, str):
            value = ",".join(dict.fromkeys(text_of(v) for v in value))
        out.append(f"{label}={value}")
    return out


def per_base(kind: Kind, given: Sequence[str], bases: Mapping[str, Spec]) -> dict[str, list[str]]:
    """Each base's texts of one kind, in the order given: its own (prefixed) ones and the
    unprefixed ones whose paths it has. AxisError for an unknown base or a text no base fits."""
    out: dict[str, list[str]] = {name: [] for name in bases}
    split = [split_prefix(t) for t in given]
    for name, text in split:
        if name is not None and name not in bases:
            hint = did_you_mean(name, bases) or "bases are " + ", ".join(bases)
            raise AxisError(f"--{kind} '{name}:{text}': no base '{name}'; {hint}")
    own = {(name, _label(kind, text)) for name, text in split if name is not None}
    for name, text in split:
        if name is not None:
            out[name].append(text)
            continue
        why = {b: _misfit(kind, text, spec) for b, spec in bases.items()}
        fits = [b for b, reason in why.items() if reason is None]
        if not fits:
            first = next(iter(why))
            raise AxisError(f"--{kind} '{text}' fits no base: {first}: {why[first]}")
        for b in fits:
            if (b, _label(kind, text)) not in own:
                out[b].append(text)
    return out


def _label(kind: Kind, text: str) -> str | None:
    if kind == "vary":
        return parse_vary(text).label
    return parse_set(text).label if kind == "set" else None


def _misfit(kind: Kind, text: str, spec: Spec) -> str | None:
    """Why the text's paths are not all in the spec (PathError's words), or None."""
    try:
        for path in paths_of(kind, text):
            locate(path, spec.statements)
    except PathError as e:
        return str(e)
    return None


@dataclass
class MultiSummary(Summary):
    """The joint summary, with each base's kept and total variants."""

    families: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (kept, total)

    def add(self, name: str, s: Summary) -> None:
        self.total, self.kept = self.total + s.total, self.kept + s.kept
        self.excluded += s.excluded
        self.rejected.update(s.rejected)
        self.families[name] = (s.kept, s.total)

    def line(self) -> str:
        each = ", ".join(f"{n} {k}/{t}" for n, (k, t) in self.families.items())
        return f"{super().line()}; kept by base: {each}"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["families"] = {n: {"kept": k, "total": t} for n, (k, t) in self.families.items()}
        return out


class MultiSweep:
    """An iterable of rows over several bases, each with a `family`; `summary` is complete
    once iteration has finished. Keywords as SweepRun's, shared by every base; `emit` writes
    DIR/<family>/<id>.mv, `emit_parent` (a sweep file's) belongs to the first base, a `join`
    key `family:id` measures that base's row only (a bare id every base's), `samples` (random
    mode) is drawn per base."""

    def __init__(
        self,
        bases: Sequence[Spec | str | Path],
        vary: Mapping[Any, Any] | Sequence[str] = (),
        set: Mapping[str, str] | Sequence[str] = (),  # noqa: A002  (the CLI's --set)
        where: str | Sequence[str] = (),
        *,
        max_variants: int = MAX_VARIANTS,
        join: str | Path | Mapping[str, Mapping[str, Any]] | None = None,
        emit: str | Path | None = None,
        emit_parent: tuple[Path, str, tuple[Any, ...]] | None = None,
        **kw: Any,
    ) -> None:
        specs = _named(bases)
        given = {k: per_base(k, texts(k, v), specs) for k, v in _kinds(vary, set, where)}
        self.joined: Mapping[str, Mapping[str, Any]] = (
            read_join(join) if isinstance(join, (str, Path)) else join or {}
        )
        self.runs: dict[str, SweepRun] = {}
        for i, (name, spec) in enumerate(specs.items()):
            kw["emit"] = Path(emit) / name if emit is not None else None
            kw["emit_parent"] = emit_parent if i == 0 else None
            try:
                self.runs[name] = SweepRun(
                    spec,
                    *(given[k][name] for k in ("vary", "set", "where")),
                    max_variants=max_variants,
                    join=_joined_for(self.joined, name),
                    **kw,
                )
            except (AxisError, ExprError, PathError) as e:
                raise AxisError(f"{name}: {e}") from e
        self.objectives: tuple[Objective, ...] = self.runs[next(iter(specs))].objectives
        for run in self.runs.values():
            run.objectives = ()  # the joint front replaces each base's own
        self.check_size(max_variants)
        self.summary = MultiSummary()

    def check_size(self, max_variants: int) -> None:
        """Every base's variants together within --max-variants (each base's alone is checked
        by its SweepRun)."""
        if self.size > max_variants:
            sizes = " + ".join(str(r.size) for r in self.runs.values())
            raise AxisError(
                f"the sweep has {self.size:,} variants ({sizes}), more than --max-variants "
                f"{max_variants:,}; sample it with --samples N, or raise --max-variants"
            )

    @property
    def families(self) -> list[str]:
        return list(self.runs)

    @property
    def axes(self) -> list[Axis]:
        """Every base's axes, one per label, in order of first appearance."""
        seen = {a.label: a for r in self.runs.values() for a in r.axes}
        return list(seen.values())

    @property
    def derived(self) -> list[Derived]:
        seen = {d.label: d for r in self.runs.values() for d in r.derived}
        return list(seen.values())

    @property
    def size(self) -> int:
        return sum(r.size for r in self.runs.values())

    def point(self, row: Mapping[str, Any]) -> tuple[float, ...] | None:
        return row_point(row, self.objectives)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.summary = MultiSummary()
        if not self.objectives:
            yield from self._rows()
            return
        front = RunningFront()
        yield from flag_front(self._rows(), self.point, _key, front)
        self.summary.front = sorted(front.points, key=lambda k: front.points[k])

    def _rows(self) -> Iterator[dict[str, Any]]:
        for name, run in self.runs.items():
            for row in run:
                yield {"schema": row["schema"], "kind": row["kind"], "family": name, **row}
            self.summary.add(name, run.summary)


def _joined_for(joined: Mapping[str, Mapping[str, Any]], name: str) -> dict[str, Mapping[str, Any]]:
    """A base's measured columns by id: a bare id's for every base, a `family:id`'s for its own
    (the same values give the same id in every base)."""
    mine = {k.split(":", 1)[1]: v for k, v in joined.items() if k.startswith(f"{name}:")}
    return {**{k: v for k, v in joined.items() if ":" not in k}, **mine}


def _key(row: Mapping[str, Any]) -> str:
    return f"{row['family']}:{row['id']}"


def _file(base: str | Path) -> str | Path:
    """A base's file: as given, or (a name that is no file) the shipped spec of that name."""
    return base if Path(base).exists() else shipped_path(str(base)) or base


def _named(bases: Sequence[Spec | str | Path]) -> dict[str, Spec]:
    """The bases by name; AxisError when none is given or one name comes twice."""
    if not bases:
        raise AxisError("name at least one base spec")
    out: dict[str, Spec] = {}
    for base in bases:
        spec = base if isinstance(base, Spec) else load_spec(_file(base))
        if spec.name in out:
            raise AxisError(
                f"base '{spec.name}' given twice ({out[spec.name].path} and {spec.path})"
            )
        out[spec.name] = spec
    return out


def _kinds(vary: Any, set_: Any, where: Any) -> list[tuple[Kind, Any]]:
    return [("vary", vary), ("set", set_), ("where", where)]


def make_sweep(
    bases: Spec | str | Path | Sequence[Spec | str | Path],
    vary: Mapping[Any, Any] | Sequence[str] = (),
    **kw: Any,
) -> SweepRun | MultiSweep:
    """A SweepRun over one base (texts prefixed with its name apply to it), else a MultiSweep."""
    listed = [bases] if isinstance(bases, (Spec, str, Path)) else list(bases)
    if len(listed) != 1:
        return MultiSweep(listed, vary, **kw)
    kinds = _kinds(vary, kw.pop("set", ()), kw.pop("where", ()))
    if not any(split_prefix(t)[0] for k, v in kinds for t in texts(k, v)):
        base = listed[0]
        return SweepRun(
            base if isinstance(base, Spec) else _file(base), *(v for _, v in kinds), **kw
        )
    specs = _named(listed)
    name = next(iter(specs))
    return SweepRun(specs[name], *(per_base(k, texts(k, v), specs)[name] for k, v in kinds), **kw)
