"""The reference implementations `mvitdsl bench --against` and benchmarks/table.py run beside a
spec's model: the torchvision or timm model its `reference` line names (language/reference.py),
built at the spec's input size, and the spec model's weights copied from it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..ir import NamedModel, Referenced
from .export import input_shape

if TYPE_CHECKING:
    from .bench import BenchOptions


def reference_name(spec: Referenced, source: str) -> str:
    """The model name of the spec's `reference` line for `source`; ValueError (one line) when
    the spec states none for it."""
    want = spec.reference
    if want is None or want.source != source:
        stated = f"; it states 'reference {want.source} {want.name}'" if want else ""
        raise ValueError(
            f"--against {source}: no {source} model is known for {spec.name} (the spec has no "
            f"'reference {source} MODEL' line{stated})"
        )
    return want.name


def reference_model(spec: Referenced, source: str, opts: BenchOptions) -> nn.Module:
    """The reference implementation at the spec's input size, with the spec model's layout
    of weights loaded afterwards by the caller."""
    from .bench import DTYPES

    size = input_shape(spec.model)
    name = reference_name(spec, source)
    if source == "torchvision":
        model = _torchvision_model(name, size)
    else:
        model = _timm_model(name, size, spec)
    dtype = DTYPES[opts.dtype] if opts.pure else None
    return model.to(device=opts.device, dtype=dtype)


def _timm_model(name: str, size: tuple[int, ...], spec: NamedModel) -> nn.Module:
    """timm's model `name` at the spec's input size (a feature spec's: its stage maps)."""
    import timm

    if not timm.is_model(name):
        raise ValueError(f"--against timm: timm has no model {name!r} (the spec's reference line)")
    # a model that takes any size (timm's PVTv2) has no img_size to build for
    cfg = timm.models.get_pretrained_cfg(name)
    sized = cfg is None or cfg.fixed_input_size
    extra: dict[str, Any] = {"img_size": tuple(size[1:])} if sized else {}
    if spec.model.outputs is not None:
        extra["num_classes"] = 0
    model = timm.create_model(name, pretrained=False, **extra)
    if spec.model.outputs is not None:
        _as_features(model, len(spec.model.outputs.stages))
    return model


def _as_features(model: nn.Module, maps: int) -> None:
    """A feature spec's reference: the timm model called through forward_intermediates (its
    `maps` stage maps, finest first), as the spec's feature model returns them."""
    if not hasattr(model, "forward_intermediates"):
        raise ValueError(f"--against timm: {type(model).__name__} gives no intermediate maps")
    inner: Any = model.forward_intermediates

    def forward(x: Any) -> Any:
        return inner(x, indices=maps, intermediates_only=True)

    setattr(model, "forward", forward)  # noqa: B010 (an instance's forward, not the class's)


def _torchvision_model(name: str, size: tuple[int, ...]) -> nn.Module:
    """torchvision's video MViT at (C, T, H, W): its builders take no size, so the inner
    `_mvit` is wrapped for the call to pass temporal_size and spatial_size."""
    import torchvision

    video = torchvision.models.video.mvit
    if not callable(getattr(torchvision.models.video, name, None)):
        raise ValueError(
            f"--against torchvision: torchvision.models.video has no model {name!r} "
            "(the spec's reference line)"
        )
    original = video._mvit

    def sized(**kw: object) -> nn.Module:
        kw.update(temporal_size=size[1], spatial_size=(size[2], size[3]))
        return original(**kw)  # type: ignore[no-any-return]

    video._mvit = sized
    try:
        return getattr(torchvision.models.video, name)()  # type: ignore[no-any-return]
    finally:
        video._mvit = original


def load_reference_weights(gm: nn.Module, ref: nn.Module, spec: NamedModel, source: str) -> None:
    from .weights import convert_state_dict

    state = ref.state_dict()
    if spec.model.outputs is not None:  # a feature spec has no classifier (timm's head.norm)
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    gm.load_state_dict(convert_state_dict(state, source, spec=spec), strict=True)  # type: ignore[arg-type]
