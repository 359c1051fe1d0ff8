"""The backend: IR -> torch. The only modules that import torch.

Enters: the IR and the analysis' shapes. Leaves: a `torch.fx.GraphModule` built node by node
(`emit`, calling the functions of `runtime`), graph passes (`passes`: activation checkpointing),
standalone artifacts (`artifact`), torch.export / ONNX files (`export`) and state-dict dialects
(`weights`).
"""
