"""The backend: IR -> torch. The only modules that import torch.

Enters: the IR and the analysis' shapes. Leaves: a `torch.fx.GraphModule` built node by node
(`emit`, calling the reference semantics in `runtime`), graph rewrites each `pass(gm) -> gm`
(`passes/`: features, checkpoint, and optimize, the CPU optimisation layer swapping in `kernels`
with the registered op `mvitdsl::pool_conv`), the one timing loop (`bench`),
standalone artifacts (`artifact`), torch.export / ONNX files (`export`) and state-dict dialects
(`weights`).
"""
