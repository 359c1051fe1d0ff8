"""The reference implementations `mvitdsl bench --against` and benchmarks/table.py run beside a
spec's model: which torchvision or timm model matches each shipped spec, built at the spec's input
size, and the spec model's weights copied from it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..ir import NamedModel
from .export import input_shape

if TYPE_CHECKING:
    from .bench import BenchOptions

# spec name -> (source, model name) of the reference implementation
REFERENCES: dict[str, tuple[str, str]] = {
    "mvit_b": ("torchvision", "mvit_v1_b"),
    "mvitv2_s": ("torchvision", "mvit_v2_s"),
    "mvitv2_t_image": ("timm", "mvitv2_tiny"),
    "mvitv2_s_image": ("timm", "mvitv2_small"),
    "mvitv2_b_image": ("timm", "mvitv2_base"),
    "mvitv2_l_image": ("timm", "mvitv2_large"),
    "mvitv2_h_image": ("timm", "mvitv2_huge"),
    "swin_t": ("timm", "swin_tiny_patch4_window7_224"),
    "swin_s": ("timm", "swin_small_patch4_window7_224"),
    "swin_b": ("timm", "swin_base_patch4_window7_224"),
    "pvt_v2_b0": ("timm", "pvt_v2_b0"),
    "pvt_v2_b1": ("timm", "pvt_v2_b1"),
    "pvt_v2_b2": ("timm", "pvt_v2_b2"),
    "pvt_v2_b3": ("timm", "pvt_v2_b3"),
    "pvt_v2_b4": ("timm", "pvt_v2_b4"),
    "pvt_v2_b5": ("timm", "pvt_v2_b5"),
    "pvt_v2_b2_li": ("timm", "pvt_v2_b2_li"),
    "hiera_t_image": ("timm", "hiera_tiny_224"),
    "hiera_s_image": ("timm", "hiera_small_224"),
    "hiera_b_image": ("timm", "hiera_base_224"),
    "hiera_b_plus_image": ("timm", "hiera_base_plus_224"),
    "hiera_l_image": ("timm", "hiera_large_224"),
    "hiera_h_image": ("timm", "hiera_huge_224"),
    # SAM2.1's image-encoder trunks (feature specs: timm's forward_intermediates is the reference)
    "sam2_hiera_t": ("timm", "sam2_hiera_tiny"),
    "sam2_hiera_s": ("timm", "sam2_hiera_small"),
    "sam2_hiera_b_plus": ("timm", "sam2_hiera_base_plus"),
    "sam2_hiera_l": ("timm", "sam2_hiera_large"),
}


def reference_model(spec: NamedModel, source: str, opts: BenchOptions) -> nn.Module:
    """The reference implementation at the spec's input size, with the spec model's layout
    of weights loaded afterwards by the caller."""
    from .bench import DTYPES

    size = input_shape(spec.model)
    want = REFERENCES.get(spec.name)
    if want is None or want[0] != source:
        raise ValueError(f"--against {source}: no {source} model is known for {spec.name}")
    if source == "torchvision":
        model = _torchvision_model(want[1], size)
    else:
        import timm

        # a model that takes any size (timm's PVTv2) has no img_size to build for
        cfg = timm.models.get_pretrained_cfg(want[1])
        sized = cfg is None or cfg.fixed_input_size
        extra: dict[str, Any] = {"img_size": tuple(size[1:])} if sized else {}
        if spec.model.outputs is not None:
            extra["num_classes"] = 0
        model = timm.create_model(want[1], pretrained=False, **extra)
        if spec.model.outputs is not None:
            _as_features(model, len(spec.model.outputs.stages))
    dtype = DTYPES[opts.dtype] if opts.pure else None
    return model.to(device=opts.device, dtype=dtype)


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
