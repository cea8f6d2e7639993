"""Text from outside (file names, run ids, the package's messages, which
quote both) shown as it is: Streamlit draws st.error, st.warning,
st.caption and st.markdown as Markdown with its own additions (colours
`:red[...]`, icons and emoji `:name:`, LaTeX `$...$`), so a file called
`**x** [y](z).zip` would be drawn bold with a link."""

from __future__ import annotations

import re
import string

# CommonMark lets a backslash escape any ASCII punctuation, and an escaped
# character is text to every later step, Streamlit's additions included.
_ESCAPED = {ord(c): "\\" + c for c in string.punctuation}
# But GitHub's autolinks are found in the text after escapes are undone:
# "http://x.com", "www.x.com" and "icon@2x.png" (an e-mail address to it)
# become links. An invisible word joiner after '@', inside '://' and before
# the dot of 'www.' leaves nothing a link can be read from; other text (a
# plain "photo.png") is left as it is.
JOINER = "\u2060"
_LINK_STARTS = re.compile(r"@|(?<=:)(?=//)|(?<=www)(?=\.)", re.IGNORECASE)


def literal(text: str) -> str:
    """`text` as Markdown that draws these characters and no others (but
    invisible word joiners), on one line: a newline in a name would start a
    paragraph, a heading, a list."""
    one_line = " ".join(str(text).splitlines())
    return _LINK_STARTS.sub(lambda m: m.group() + JOINER, one_line).translate(_ESCAPED)
