"""Text from outside (file names, run ids, the package's messages, which
quote both) shown as it is: Streamlit draws st.error, st.warning,
st.caption and st.markdown as Markdown with its own additions (colours
`:red[...]`, icons and emoji `:name:`, LaTeX `$...$`), so a file called
`**x** [y](z).zip` would be drawn bold with a link."""

from __future__ import annotations

import string

# CommonMark lets a backslash escape any ASCII punctuation, and an escaped
# character is text to every later step, Streamlit's additions included.
_ESCAPED = {ord(c): "\\" + c for c in string.punctuation}
# But GitHub's autolinks are found in the text after escapes are undone:
# "http://x.com", "www.x.com" and "icon@2x.png" (an e-mail address to it)
# become links. An invisible word joiner after ':' and '@' and before '.'
# leaves nothing a link can be read from.
JOINER = "\u2060"
_UNLINKED = {ord(":"): ":" + JOINER, ord("@"): "@" + JOINER, ord("."): JOINER + "."}


def literal(text: str) -> str:
    """`text` as Markdown that draws these characters and no others (but
    invisible word joiners), on one line: a newline in a name would start a
    paragraph, a heading, a list."""
    return " ".join(str(text).splitlines()).translate(_UNLINKED).translate(_ESCAPED)
