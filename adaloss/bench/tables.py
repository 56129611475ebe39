"""Plain-text and Markdown tables: one renderer for ``adaloss table`` and ``adaloss speed``."""

from __future__ import annotations


def render_table(
    header: list[str], rows: list[list[str]], markdown: bool = False, n_left: int = 1
) -> list[str]:
    """Lines of a table; the first ``n_left`` columns are labels, the rest numbers.

    Markdown right-aligns the number columns and escapes ``|`` in cells; plain text pads
    every column to its widest cell and underlines the header.
    """
    if markdown:

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        sep = "|" + "|".join("---" if i < n_left else "--:" for i in range(len(header))) + "|"
        return [line(header), sep] + [line(r) for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
