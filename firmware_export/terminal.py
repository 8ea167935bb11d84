"""Text from a file, made safe for a terminal.

A tensor name, a layer name or a boards file's `source` is the file author's text: an ESC
sequence in it would clear the screen, retitle the window or hide the rest of a line, and a
bidirectional override would show the line in another order than it is. `printable` shows
every such character as a visible escape (`\\x1b`, `\\u202e`); `escape` does that and then
escapes rich markup (`[red]`), for text printed through a rich Console. Newlines and tabs
become escapes too: one name stays on one line of a table.

This module only rewrites strings; it does not print, and it knows nothing of C source
(cexport.py escapes for C).

Example:
    >>> printable("conv\\x1b[2J")
    'conv\\\\x1b[2J'
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (ECMA-48), and Unicode's bidirectional embeddings, overrides
# and isolates (U+202A-U+202E, U+2066-U+2069; the "Trojan Source" characters, CVE-2021-42574),
# plus the zero-width joiners and the byte-order mark that hide text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`str(text)` with every control, bidi-override or invisible character shown as an escape."""
    return _UNSAFE.sub(_visible, str(text))


def escape(text: object) -> str:
    """`printable(text)` with rich markup escaped: for text from a file printed through rich."""
    from rich.markup import escape as markup_escape

    return markup_escape(printable(text))
