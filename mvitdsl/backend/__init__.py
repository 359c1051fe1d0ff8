"""The backend: IR -> torch. The only modules that import torch.

Enters: the IR and the analysis' shapes. Leaves: a `torch.fx.GraphModule` built node by node
(`emit`, calling the reference semantics in `runtime`), the CPU optimisation layer over it
(`optimize`: an fx pass and the registered op `mvitdsl::pool_conv`), `mvitdsl bench` and the
one timing loop (`bench`), graph passes (`passes`: activation checkpointing),
standalone artifacts (`artifact`), torch.export / ONNX files (`export`) and state-dict dialects
(`weights`).
"""
