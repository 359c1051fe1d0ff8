"""The analysis: IR -> facts. No torch.

Enters: the IR (`mvitdsl.ir.Model`). Leaves: shapes per block (`shapes`, `graph`: the networkx
graph of the blocks), diagnostics for shapes that do not flow (`check`), the report of params,
MACs and memory per stage and block (`analyze`), the guard rails (`budget`), the paper's Table 2
as rows (`table`) and the report as text (`report_text`).
"""
