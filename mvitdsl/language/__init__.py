"""The language: spec text -> IR. No torch.

Enters: the text of a `.mv` file (and its parents, through `extends`). Leaves: the syntax tree
(`syntax`, every node with a span) and the frozen IR (`mvitdsl.ir.Model`) with defaults filled
and stages expanded to blocks; mistakes leave as located diagnostics. Order: parse -> merge
(inheritance) -> read (settings' vocabulary into a Draft) -> expand (stage rows -> blocks)
-> lower (IR assembly);
`resolved` prints the merged spec back with the file:line of every value. `settings` is the one
table: every setting's options, the stage columns and cells, old spellings and PATH words,
declared once and read by every step here (and `docs` writes docs/LANGUAGE.md from it);
`lexical` says what a number, a size and a name are, for the grammar and every other reader.
"""
