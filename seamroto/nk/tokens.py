r"""Tokenizer for .nk text: TCL-style commands, words, braces and quotes, with line numbers.

A saved Nuke script is a TCL script, but SeamRoto never executes any of it: expressions,
``[python ...]`` substitutions and Python knobs are kept as text. Two levels are offered:

* :func:`iter_commands` splits text into commands (one per line unless a word spans lines) made
  of words: bare, ``{braced}`` (no substitution, nested braces balanced, ``\{`` does not count)
  or ``"quoted"`` (backslash escapes). It never raises: an unterminated word at the end of the
  text is returned with ``complete=False`` so the reader can warn and keep what it has.
* :func:`parse_tree` turns the content of a braced knob value (``curves``, ``tracks``) into
  nested lists of string tokens, iteratively (no recursion), raising :class:`NkParseError` on
  unbalanced or too deeply nested input.
"""

from __future__ import annotations

import logging
import re
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

from seamroto.errors import NkParseError

logger = logging.getLogger(__name__)

WORD_BARE = "bare"
WORD_BRACE = "brace"
WORD_QUOTE = "quote"

# Real roto trees are about 10 levels deep; a cap keeps garbage from building structures that
# Python's own (recursive) list comparison or repr could not handle.
MAX_TREE_DEPTH = 200

_BRACE_RE = re.compile(r"[{}\\]")
_QUOTE_RE = re.compile(r'["\\]')
_BARE_RE = re.compile(r"[\s\[\]\\;{\"]")
_COMMENT_END_RE = re.compile(r"[\n\\]")
_SEPARATORS_RE = re.compile(r"(?:[ \t\r\v\f;\n]|\\\n)*")
_BLANKS_RE = re.compile(r"(?:[ \t\r\v\f]|\\\n)*")
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|[0-7]{1,3}|\n[ \t]*|.|\Z)", re.S)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_TREE_TOKEN_RE = re.compile(r'\{|\}|"(?:[^"\\]|\\.)*"|(?:\\.|[^\s{}\\])+|\\', re.S)

TreeItem = Union[str, List["TreeItem"]]


class Word(NamedTuple):
    """One TCL word: ``value`` is the content (braces/quotes removed, quote escapes resolved).

    ``start``/``end`` are offsets of the raw word in the text (``text[start:end]`` is the word as
    written, braces and quotes included); ``line`` is the 1-based line it starts on.
    """

    kind: str
    value: str
    start: int
    end: int
    line: int
    complete: bool = True


class Command(NamedTuple):
    """A command (knob line, node header, ``push``...): its words, or a ``#`` comment."""

    words: Tuple[Word, ...]
    start: int
    end: int
    line: int
    comment: bool = False

    @property
    def complete(self) -> bool:
        """False when the last word ran into the end of the text (truncated file)."""
        return not self.words or self.words[-1].complete


def decode_nk(data: Union[bytes, bytearray, memoryview, str]) -> Tuple[str, Optional[int]]:
    """Decode script bytes as UTF-8, keeping any other bytes as surrogate escapes.

    Nuke writes UTF-8, but real scripts carry stray legacy-encoded bytes (GBK font names in
    ``note_font``); ``surrogateescape`` keeps them losslessly (``text.encode("utf-8",
    "surrogateescape")`` restores the bytes) instead of failing.

    Returns:
        The text (BOM removed) and the 1-based line of the first undecodable byte, or None.
    """
    if isinstance(data, str):
        text = data
        bad_line = None
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
            bad_line = None
        except UnicodeDecodeError as err:
            text = raw.decode("utf-8", "surrogateescape")
            bad_line = raw.count(b"\n", 0, err.start) + 1
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, bad_line


def unescape_tcl(text: str) -> str:
    r"""Resolve TCL backslash escapes of a quoted word (``\n``, ``\"``, ``\[``, ``\x41``...)."""
    if "\\" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc == "":
            return "\\"
        c = esc[0]
        if c == "\n":
            return " "
        if c == "x" and len(esc) > 1:
            return chr(int(esc[1:], 16))
        if c == "u" and len(esc) > 1:
            return chr(int(esc[1:], 16))
        if c in "01234567":
            return chr(int(esc, 8))
        return _SIMPLE_ESCAPES.get(c, c)

    return _ESCAPE_RE.sub(repl, text)


def find_brace_end(text: str, pos: int, end: int) -> int:
    """Offset of the ``}`` closing the ``{`` at ``pos``, or -1 when the text ends first.

    Runs between backslashes use ``str.find``/``str.count`` (one step per ``}``), which keeps
    the 100 KB roto knobs of real scripts fast; a backslash makes the next character literal.
    """
    depth = 0
    i = pos
    find = text.find
    count = text.count
    while i < end:
        bs = find("\\", i, end)
        limit = end if bs < 0 else bs
        while True:
            j = find("}", i, limit)
            if j < 0:
                depth += count("{", i, limit)
                break
            depth += count("{", i, j) - 1
            if depth <= 0:
                return j
            i = j + 1
        if bs < 0:
            return -1
        i = bs + 2
    return -1


def _find_quote_end(text: str, pos: int, end: int) -> int:
    """Offset of the ``"`` closing the quote opened at ``pos``, or -1."""
    i = pos + 1
    search = _QUOTE_RE.search
    while True:
        m = search(text, i, end)
        if m is None:
            return -1
        if m.group() == '"':
            return m.start()
        i = m.start() + 2


def _find_bare_end(text: str, pos: int, end: int) -> Tuple[int, bool]:
    """End of a bare word starting at ``pos``: whitespace or ``;`` outside ``[...]``.

    Returns (end offset, complete). Inside brackets, braces and quotes are skipped as units so
    ``[python {a ]}]`` stays one word.
    """
    depth = 0
    i = pos
    search = _BARE_RE.search
    while True:
        m = search(text, i, end)
        if m is None:
            return end, depth == 0
        c = m.group()
        j = m.start()
        if c == "\\":
            if depth == 0 and text.startswith("\\\n", j):
                return j, True  # line continuation ends the word
            i = j + 2
            continue
        if c == "[":
            depth += 1
            i = j + 1
            continue
        if c == "]":
            if depth > 0:
                depth -= 1
            i = j + 1
            continue
        if depth == 0:
            if c in "{\"":
                i = j + 1  # braces and quotes are literal inside a bare word
                continue
            return j, True
        if c == "{":
            k = find_brace_end(text, j, end)
        elif c == '"':
            k = _find_quote_end(text, j, end)
        else:
            i = j + 1  # whitespace or ';' inside brackets
            continue
        if k < 0:
            return end, False
        i = k + 1


def iter_commands(
    text: str, start: int = 0, end: Optional[int] = None, line: int = 1
) -> Iterator[Command]:
    """Split ``text[start:end]`` into TCL commands, tracking 1-based line numbers.

    Comments (``#`` at the start of a command) are yielded with ``comment=True`` so a caller can
    use them as landmarks (the reference excerpt marks its cuts with ``# ---`` lines). Iteration
    stops after a command whose last word is incomplete (unterminated at ``end``).

    Args:
        text: The whole script text.
        start: Offset to start at.
        end: Offset to stop at (exclusive); defaults to the end of ``text``.
        line: Line number of ``start``.
    """
    if end is None:
        end = len(text)
    pos = start
    count = text.count
    while pos < end:
        # Skip separators between commands.
        skip = _SEPARATORS_RE.match(text, pos, end)
        if skip is not None and skip.end() > pos:
            line += count("\n", pos, skip.end())
            pos = skip.end()
        if pos >= end:
            return
        cmd_start = pos
        cmd_line = line
        if text[pos] == "#":
            i = pos
            while True:
                m = _COMMENT_END_RE.search(text, i, end)
                if m is None:
                    stop = end
                    break
                if m.group() == "\\":
                    i = m.start() + 2
                    continue
                stop = m.start()
                break
            line += count("\n", pos, stop)
            yield Command((), cmd_start, stop, cmd_line, comment=True)
            pos = stop
            continue
        words: List[Word] = []
        truncated = False
        while pos < end:
            blank = _BLANKS_RE.match(text, pos, end)
            if blank is not None and blank.end() > pos:
                line += count("\n", pos, blank.end())
                pos = blank.end()
                if pos >= end:
                    break
            c = text[pos]
            if c == "\n" or c == ";":
                break
            w_line = line
            if c == "{":
                k = find_brace_end(text, pos, end)
                if k < 0:
                    words.append(Word(WORD_BRACE, text[pos + 1 : end], pos, end, w_line, False))
                    line += count("\n", pos, end)
                    pos = end
                    truncated = True
                    break
                words.append(Word(WORD_BRACE, text[pos + 1 : k], pos, k + 1, w_line))
                line += count("\n", pos, k)
                pos = k + 1
            elif c == '"':
                k = _find_quote_end(text, pos, end)
                if k < 0:
                    value = unescape_tcl(text[pos + 1 : end])
                    words.append(Word(WORD_QUOTE, value, pos, end, w_line, False))
                    line += count("\n", pos, end)
                    pos = end
                    truncated = True
                    break
                words.append(Word(WORD_QUOTE, unescape_tcl(text[pos + 1 : k]), pos, k + 1, w_line))
                line += count("\n", pos, k)
                pos = k + 1
            else:
                k, ok = _find_bare_end(text, pos, end)
                if k == pos:  # a lone ';' or bracket edge case: consume one character
                    k = pos + 1
                words.append(Word(WORD_BARE, text[pos:k], pos, k, w_line, ok))
                line += count("\n", pos, k)
                pos = k
                if not ok:
                    truncated = True
                    break
        if words:
            yield Command(tuple(words), cmd_start, words[-1].end, cmd_line)
        if truncated:
            return


def split_words(text: str) -> List[Word]:
    """The words of ``text`` read as one command (newlines count as spaces)."""
    out: List[Word] = []
    for cmd in iter_commands(text.replace("\n", " ")):
        if not cmd.comment:
            out.extend(cmd.words)
    return out


def word_value(raw: str) -> str:
    """Content of a knob value as written: quotes/braces removed when it is one word.

    ``"2048 1080 0 0 2048 1080 1 2K"`` -> ``2048 1080 0 0 2048 1080 1 2K``; ``{1 2}`` -> ``1 2``;
    several words are returned unchanged.
    """
    if not raw or raw[0] not in "{\"":
        return raw
    words = list(_single_word(raw))
    if len(words) == 1 and words[0].complete:
        return words[0].value
    return raw


def _single_word(raw: str) -> Iterator[Word]:
    for cmd in iter_commands(raw):
        if cmd.comment:
            return
        yield from cmd.words
        return


def parse_tree(text: str, *, line: int = 1, what: str = "value") -> List[TreeItem]:
    """Parse brace-structured knob content into nested lists of string tokens.

    ``{a {b c}} "d e"`` -> ``[["a", ["b", "c"]], "d e"]``. Quoted tokens lose their quotes and
    escapes are resolved; bare tokens are kept as written.

    Args:
        text: Content to parse (usually a braced knob value without its outer braces).
        line: Line where ``text`` starts, for error messages.
        what: What is being parsed (``knob 'curves'``), for error messages.

    Raises:
        NkParseError: Unbalanced braces, or nesting deeper than ``MAX_TREE_DEPTH``.
    """
    root: List[TreeItem] = []
    stack: List[List[TreeItem]] = [root]
    cur = root
    for tok in _TREE_TOKEN_RE.findall(text):
        c = tok[0]
        if c == "{":
            if len(stack) > MAX_TREE_DEPTH:
                raise NkParseError(
                    f"{what} is nested more than {MAX_TREE_DEPTH} braces deep; the file is "
                    "corrupt (no Nuke knob nests this far)",
                    line=line + _line_of_depth(text, MAX_TREE_DEPTH + 1),
                )
            new: List[TreeItem] = []
            cur.append(new)
            stack.append(new)
            cur = new
        elif c == "}":
            if len(stack) == 1:
                raise NkParseError(
                    f"{what} has an unmatched '}}'; check the braces around this line",
                    line=line + _line_of_depth(text, -1),
                )
            stack.pop()
            cur = stack[-1]
        elif c == '"' and len(tok) > 1 and tok.endswith('"'):
            cur.append(unescape_tcl(tok[1:-1]))
        else:
            cur.append(tok)
    if len(stack) > 1:
        raise NkParseError(
            f"{what} has {len(stack) - 1} unclosed '{{' (the first opens here); the file looks "
            "truncated",
            line=line + _line_of_unclosed(text),
        )
    return root


def _brace_offsets(text: str) -> Iterator[Tuple[int, int]]:
    """(offset, depth after the token) for each brace token, as parse_tree sees them."""
    depth = 0
    for m in _TREE_TOKEN_RE.finditer(text):
        tok = m.group()
        if tok == "{":
            depth += 1
            yield m.start(), depth
        elif tok == "}":
            depth -= 1
            yield m.start(), depth


def _line_of_depth(text: str, depth: int) -> int:
    """Lines before the first brace reaching ``depth`` (-1: the first unmatched ``}``)."""
    for offset, d in _brace_offsets(text):
        if d == depth or (depth < 0 and d < 0):
            return text.count("\n", 0, offset)
    return 0


def _line_of_unclosed(text: str) -> int:
    """Lines before the outermost ``{`` that is never closed."""
    opens: List[int] = []
    for offset, d in _brace_offsets(text):
        if d > len(opens):
            opens.append(offset)
        else:
            del opens[d:]
    return text.count("\n", 0, opens[0]) if opens else 0
