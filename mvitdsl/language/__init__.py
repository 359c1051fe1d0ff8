"""The language: spec text -> IR. No torch.

Enters: the text of a `.mv` file (and its parents, through `extends`). Leaves: the syntax tree
(`syntax`, every node with a span) and the frozen IR (`mvitdsl.ir.Model`) with defaults filled
and stages expanded to blocks; mistakes leave as located diagnostics. Order: parse -> merge
(inheritance) -> read (settings' vocabulary into a Draft) -> expand (stage rows -> blocks)
-> lower (IR assembly);
`resolved` prints the merged spec back with the file:line of every value. `settings` declares
every setting's options once (kind, choices or range, default, doc); `docs` writes
docs/LANGUAGE.md from it.
"""
