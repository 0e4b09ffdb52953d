"""Parse ``.nk`` script text into nodes: the grammar, Nuke's node stack, Group nesting and Root settings.

Nothing in a script is executed: expressions, ``[python ...]`` and Python knobs stay text. The
grammar follows real Nuke-saved files (see ``shared/reference/nk/FORMAT.md``): nodes are
``Class { knob value ... }`` blocks and ``Group {...}`` ... ``end_group`` nest names. Number tokens
(decimal or roto hex float) and format knobs are read here too, for every node reader.

Every failure is an :class:`~seamroto.errors.NkParseError`, whatever the input bytes; a truncated
file is read as far as it goes and the loss is reported in ``NkScript.warnings``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

from seamroto.errors import NkParseError
from seamroto.nk.numbers import is_hex_float, parse_hex_float
from seamroto.nk.tokens import (
    WORD_BARE,
    WORD_BRACE,
    Command,
    Word,
    decode_nk,
    iter_commands,
    word_value,
)

logger = logging.getLogger(__name__)

ROOT_CLASS = "Root"
GROUP_CLASSES = frozenset({"Group", "LiveGroup", "Gizmo"})
ROTO_CLASSES = frozenset({"Roto", "RotoPaint"})
TRACKER_CLASSES = frozenset({"Tracker4"})
READ_CLASSES = frozenset({"Read", "DeepRead"})

# Top-level commands a saved script may hold besides nodes; anything else gets a warning.
KNOWN_TOP_LEVEL = frozenset(
    {"version", "set", "push", "end_group", "define_window_layout_xml", "add_layer", "clone"}
)
MAX_WARNINGS = 100

# Nuke's defaults when the Root node omits a knob.
DEFAULT_FIRST_FRAME = 1
DEFAULT_LAST_FRAME = 100
DEFAULT_FPS = 24.0

# Nuke's built-in formats, for knobs that name a format instead of spelling it out.
NUKE_FORMATS: Dict[str, Tuple[int, int, float]] = {
    "PC_Video": (640, 480, 1.0),
    "NTSC": (720, 486, 0.91),
    "PAL": (720, 576, 1.09),
    "NTSC_16:9": (720, 486, 1.21),
    "PAL_16:9": (720, 576, 1.46),
    "HD_720": (1280, 720, 1.0),
    "HD_1080": (1920, 1080, 1.0),
    "UHD_4K": (3840, 2160, 1.0),
    "1K_Super_35(full-ap)": (1024, 778, 1.0),
    "1K_Cinemascope": (914, 778, 2.0),
    "2K_Super_35(full-ap)": (2048, 1556, 1.0),
    "2K_Cinemascope": (1828, 1556, 2.0),
    "2K_DCP": (2048, 1080, 1.0),
    "4K_Super_35(full-ap)": (4096, 3112, 1.0),
    "4K_Cinemascope": (3656, 3112, 2.0),
    "4K_DCP": (4096, 2160, 1.0),
    "square_256": (256, 256, 1.0),
    "square_512": (512, 512, 1.0),
    "square_1K": (1024, 1024, 1.0),
    "square_2K": (2048, 2048, 1.0),
}

_CLASS_RE = re.compile(r"^[A-Za-z_][\w.:-]*$")
_NODE_HEADER_RE = re.compile(r"^[A-Z][\w.]*$")
_VERSION_RE = re.compile(r"^\d+(\.\d+)*$")
_DECIMAL_RE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_INT_RE = re.compile(r"^[-+]?\d+$")


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class NkFormat:
    """An image format as Nuke writes it (``"2048 1080 0 0 2048 1080 1 2K"``)."""

    width: int
    height: int
    pixel_aspect: float = 1.0
    name: str = ""


@dataclass(frozen=True)
class NkNode:
    """One node block of a script, knobs kept as the text Nuke wrote.

    ``knobs`` maps knob name -> value as written (braces and quotes included, so
    ``format "1920 1080 0 0 1920 1080 1 HD"`` keeps its quotes); a knob written twice keeps the
    last value, and ``items`` holds every knob line in order (``addUserKnob`` repeats).
    ``group`` is the path of enclosing Group names: node names are unique only inside a Group.
    ``inputs`` are names of the input nodes (input 0 first, None = disconnected) replayed from
    Nuke's node stack: a node pops ``inputs`` entries (1 when the knob is absent, as Nuke writes
    it for single-input nodes) and pushes itself.
    """

    node_class: str
    name: str
    knobs: Dict[str, str]
    group: Tuple[str, ...] = ()
    line: int = 0
    knob_lines: Dict[str, int] = field(default_factory=dict)
    items: Tuple[Tuple[str, str], ...] = ()
    inputs: Tuple[Optional[str], ...] = ()
    truncated: bool = False

    @property
    def path(self) -> str:
        """Full name as Nuke shows it: ``Group1.Roto1`` (just ``Roto1`` at the top level)."""
        return ".".join((*self.group, self.name))

    def value(self, knob: str) -> Optional[str]:
        """Knob content without its quotes or braces (escapes resolved), None when absent."""
        raw = self.knobs.get(knob)
        return None if raw is None else word_value(raw)


@dataclass(frozen=True)
class NkScript:
    """A parsed script: its nodes (Root apart), Root settings and what could not be read."""

    nodes: Tuple[NkNode, ...]
    path: Optional[str] = None
    version: Optional[str] = None
    root: Optional[NkNode] = None
    format: Optional[NkFormat] = None
    first_frame: Optional[int] = None
    last_frame: Optional[int] = None
    fps: Optional[float] = None
    warnings: List[str] = field(default_factory=list)

    @property
    def folder(self) -> Optional[str]:
        """Folder of the script file, against which relative paths resolve."""
        if not self.path:
            return None
        return os.path.dirname(os.path.abspath(self.path))

    @property
    def frame_range(self) -> Optional[Tuple[int, int]]:
        """(first, last) from the Root node, or None for a clipboard/toolset without Root."""
        if self.first_frame is None or self.last_frame is None:
            return None
        return (self.first_frame, self.last_frame)

    @cached_property
    def _by_path(self) -> Dict[Tuple[Tuple[str, ...], str], NkNode]:
        out: Dict[Tuple[Tuple[str, ...], str], NkNode] = {}
        for n in self.nodes:
            out.setdefault((n.group, n.name), n)
        return out

    def node_at(self, group: Sequence[str], name: str) -> Optional[NkNode]:
        """The node called ``name`` inside the Group path ``group``, or None."""
        return self._by_path.get((tuple(group), name))


# ---------------------------------------------------------------------------------------------
# Script structure


def read_script(path: Union[str, os.PathLike[str]]) -> NkScript:
    """Read and parse a ``.nk`` file.

    Raises:
        NkParseError: The file cannot be read or does not follow Nuke's grammar.
    """
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise NkParseError(
            f"cannot read the script ({err.strerror or err}); check the path and permissions",
            path=p,
        ) from err
    return parse_script(data, p)


def parse_script(data: Union[bytes, str], path: Optional[str] = None) -> NkScript:
    """Parse script text (saved script, clipboard paste, toolset or gizmo) into nodes.

    Args:
        data: File content; bytes that are not UTF-8 are kept (surrogate-escaped), not fatal.
        path: Where the text came from, for messages and resolving relative paths.

    Returns:
        The script; ``warnings`` lists what was skipped or repaired (truncated nodes, unknown
        commands, unclosed groups).

    Raises:
        NkParseError: The text is not a Nuke script (for instance a ``}`` outside any node).
    """
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise NkParseError(f"expected .nk text or bytes, got {type(data).__name__}", path=path)
    text, bad_line = decode_nk(data)
    builder = _ScriptBuilder(text, path)
    if bad_line is not None:
        builder.warn(
            bad_line, "the file is not valid UTF-8 here; the odd bytes are kept as they are"
        )
    builder.run()
    return builder.finish()


@dataclass
class _Draft:
    """A node while the script is being read (names and groups resolve at the end)."""

    node_class: str
    line: int
    group: Tuple[int, ...]
    knobs: Dict[str, str] = field(default_factory=dict)
    knob_lines: Dict[str, int] = field(default_factory=dict)
    items: List[Tuple[str, str]] = field(default_factory=list)
    inputs: List[Optional[int]] = field(default_factory=list)
    truncated: bool = False
    name: str = ""


class _ScriptBuilder:
    """Walks top-level commands, keeping Nuke's node stack and Group nesting."""

    def __init__(self, text: str, path: Optional[str]) -> None:
        self.text = text
        self.path = path
        self.drafts: List[_Draft] = []
        self.root: Optional[_Draft] = None
        self.version: Optional[str] = None
        self.warnings: List[str] = []
        self._dropped_warnings = 0
        self.group: Tuple[int, ...] = ()
        self.group_stack: List[Tuple[Tuple[int, ...], List[Optional[int]]]] = []
        self.stack: List[Optional[int]] = []
        self.vars: Dict[str, Optional[int]] = {}
        self.clones: Dict[str, int] = {}

    def warn(self, line: Optional[int], message: str) -> None:
        if len(self.warnings) >= MAX_WARNINGS:
            self._dropped_warnings += 1
            return
        text = f"line {line}: {message}" if line is not None else message
        self.warnings.append(text)
        logger.warning("%s: %s", self.path or "<nk text>", text)

    def run(self) -> None:
        pos, line = 0, 1
        end = len(self.text)
        while pos < end:
            resume: Optional[Tuple[int, int]] = None
            for cmd in iter_commands(self.text, pos, end, line):
                if cmd.comment:
                    continue
                resume = self._command(cmd)
                if resume is not None:
                    break
            if resume is None:
                return
            pos, line = resume

    # -- top-level commands --------------------------------------------------------------------

    def _command(self, cmd: Command) -> Optional[Tuple[int, int]]:
        words = cmd.words
        head = words[0]
        if head.kind == WORD_BARE and head.value.startswith("}"):
            raise NkParseError(
                "unexpected '}' outside any node: a node's '{' is missing or a knob value has "
                "one '}' too many",
                path=self.path,
                line=cmd.line,
            )
        op = head.value if head.kind == WORD_BARE else ""
        last = words[-1]
        if op == "clone" and len(words) >= 3 and last.kind == WORD_BRACE:
            return self._clone(cmd)
        if op in KNOWN_TOP_LEVEL:
            self._known(op, cmd)
            return None
        if len(words) == 2 and last.kind == WORD_BRACE and _CLASS_RE.match(op):
            return self._node(op, last, cmd.line, None)
        shown = self.text[cmd.start : min(cmd.end, cmd.start + 60)].replace("\n", " ")
        self.warn(cmd.line, f"ignored a command that is not a node: {shown!r}")
        return None

    def _known(self, op: str, cmd: Command) -> None:
        words = cmd.words
        args = [w.value for w in words[1:]]
        if not cmd.complete:
            self.warn(cmd.line, f"'{op}' runs into the end of the file; the file is truncated")
            return
        if op == "version":
            self.version = " ".join(args) if args else None
        elif op == "push":
            if len(args) == 1 and args[0].startswith("$"):
                self.stack.append(self.vars.get(args[0][1:]))
            elif len(args) == 1 and args[0] == "0":
                self.stack.append(None)
            else:
                self.warn(cmd.line, f"cannot read 'push {' '.join(args)}'")
        elif op == "set":
            if len(args) == 2:
                m = re.fullmatch(r"\[stack (\d+)\]", args[1].strip())
                if m is not None:
                    k = int(m.group(1))
                    self.vars[args[0]] = self.stack[-1 - k] if k < len(self.stack) else None
        elif op == "end_group":
            if self.group_stack:
                self.group, self.stack = self.group_stack.pop()
            else:
                self.warn(cmd.line, "'end_group' without an open Group; ignored it")

    def _clone(self, cmd: Command) -> Optional[Tuple[int, int]]:
        words = cmd.words
        body = words[-1]
        ident = words[1].value
        base: Optional[_Draft] = None
        if ident.startswith("$C"):
            original = self.clones.get(ident[2:])
            if original is None:
                self.warn(cmd.line, f"clone of unknown node {ident}; read it as a NoOp")
                node_class = "NoOp"
            else:
                base = self.drafts[original]
                node_class = base.node_class
        else:
            node_class = words[-2].value if len(words) >= 4 else "NoOp"
        ref = ident[4:].split("|")[0] if ident.startswith("node") else None
        resume = self._node(node_class, body, cmd.line, base)
        if ref is not None and self.drafts:
            self.clones[ref] = len(self.drafts) - 1
        return resume

    # -- node blocks ---------------------------------------------------------------------------

    def _node(
        self, node_class: str, body: Word, line: int, base: Optional[_Draft]
    ) -> Optional[Tuple[int, int]]:
        draft = _Draft(node_class, line, self.group)
        if base is not None:
            draft.knobs.update(base.knobs)
            draft.knob_lines.update(base.knob_lines)
            draft.items.extend(base.items)
        start = body.start + 1
        recovering = not body.complete
        stop = body.end - 1 if body.complete else len(self.text)
        resume: Optional[Tuple[int, int]] = None
        for kc in iter_commands(self.text, start, stop, body.line):
            if recovering and self._looks_top_level(kc):
                resume = (kc.start, kc.line)
                break
            if kc.comment:
                continue
            if not kc.complete:
                self.warn(
                    kc.line,
                    f"knob '{kc.words[0].value[:40]}' of a {node_class} node is not closed "
                    "before the node or the file ends; dropped it (the file is truncated)",
                )
                draft.truncated = True
                break
            self._knob(draft, kc)
        if recovering:
            draft.truncated = True
            label = draft.knobs.get("name")
            who = f"{node_class} node" + (f" '{word_value(label)}'" if label else "")
            where = (
                "the file ends inside it"
                if resume is None
                else f"the next node starts at line {resume[1]}"
            )
            self.warn(
                line,
                f"{who} has no closing '}}' ({where}); kept the {len(draft.knobs)} knob(s) "
                "read before that",
            )
        self._add(draft)
        return resume

    def _looks_top_level(self, cmd: Command) -> bool:
        """In a node left open by a truncated excerpt: does this command start the next block?"""
        if cmd.comment:
            return cmd.start == 0 or self.text[cmd.start - 1] == "\n"
        words = cmd.words
        head = words[0]
        if head.kind != WORD_BARE:
            return False
        op = head.value
        if op == "end_group":
            return len(words) == 1
        if op == "push":
            return len(words) == 2 and (words[1].value.startswith("$") or words[1].value == "0")
        if op == "set":
            return len(words) == 3 and words[2].value.startswith("[stack")
        if op == "version":
            return len(words) == 3 and bool(_VERSION_RE.match(words[1].value))
        last = words[-1]
        if last.kind != WORD_BRACE or len(words) < 2:
            return False
        opens_block = self.text.startswith("\n", last.start + 1) or self.text.startswith(
            "\r\n", last.start + 1
        )
        if op == "clone":
            return opens_block
        return len(words) == 2 and opens_block and bool(_NODE_HEADER_RE.match(op))

    def _knob(self, draft: _Draft, cmd: Command) -> None:
        words = cmd.words
        name = words[0].value
        raw = self.text[words[1].start : words[-1].end] if len(words) > 1 else ""
        draft.knobs[name] = raw
        draft.knob_lines[name] = cmd.line
        draft.items.append((name, raw))

    def _add(self, draft: _Draft) -> None:
        if draft.node_class == ROOT_CLASS:
            if self.root is None:
                self.root = draft
            else:
                self.warn(draft.line, "a second Root node; kept the first")
            return
        index = len(self.drafts)
        self.drafts.append(draft)
        count = _parse_int(word_value(draft.knobs.get("inputs", "1")))
        if count is None or count < 0:
            count = 1
        inputs: List[Optional[int]] = []
        for _ in range(min(count, len(self.stack))):
            inputs.append(self.stack.pop())
        draft.inputs = inputs
        self.stack.append(index)
        if draft.node_class in GROUP_CLASSES:
            self.group_stack.append((self.group, self.stack))
            self.group = (*self.group, index)
            self.stack = []

    # -- result --------------------------------------------------------------------------------

    def finish(self) -> NkScript:
        if self.group_stack:
            open_groups = [self.drafts[i] for i in self.group]
            self.warn(
                None,
                f"{len(self.group_stack)} Group(s) not closed by 'end_group' (the file looks "
                f"truncated): the nodes after line {open_groups[0].line} are read as inside it",
            )
        self._name_nodes()
        nodes = tuple(self._freeze(d) for d in self.drafts)
        root = self._freeze(self.root) if self.root is not None else None
        fmt = None
        first = last = None
        fps = None
        if root is not None:
            fmt_text = root.value("format")
            if fmt_text is not None:
                fmt = parse_format(fmt_text)
                if fmt is None:
                    self.warn(root.knob_lines.get("format"), f"cannot read Root format {fmt_text!r}")
            try:
                first = _int_knob(root, "first_frame", DEFAULT_FIRST_FRAME)
                last = _int_knob(root, "last_frame", DEFAULT_LAST_FRAME)
            except NkParseError as err:
                self.warn(err.line, f"Root frame range not read: {err.message}")
                first = last = None
            fps_value = _parse_number(root.value("fps") or "")
            fps = fps_value if fps_value is not None and math.isfinite(fps_value) else DEFAULT_FPS
        if self._dropped_warnings:
            self.warnings.append(f"... and {self._dropped_warnings} more warnings")
        return NkScript(
            nodes=nodes,
            path=self.path,
            version=self.version,
            root=root,
            format=fmt,
            first_frame=first,
            last_frame=last,
            fps=fps,
            warnings=self.warnings,
        )

    def _name_nodes(self) -> None:
        """Give unnamed nodes the name Nuke would (class without trailing digits + counter)."""
        taken: Dict[Tuple[int, ...], Set[str]] = {}
        for d in self.drafts:
            raw = d.knobs.get("name")
            d.name = word_value(raw) if raw is not None else ""
            if d.name:
                names = taken.setdefault(d.group, set())
                if d.name in names:
                    self.warn(d.line, f"a second node named '{d.name}' in the same group")
                names.add(d.name)
        for d in self.drafts:
            if d.name:
                continue
            names = taken.setdefault(d.group, set())
            stem = re.sub(r"\d+$", "", d.node_class) or d.node_class
            n = 1
            while f"{stem}{n}" in names:
                n += 1
            d.name = f"{stem}{n}"
            names.add(d.name)
            self.warn(d.line, f"a {d.node_class} node has no name; calling it '{d.name}'")

    def _freeze(self, d: _Draft) -> NkNode:
        return NkNode(
            node_class=d.node_class,
            name=d.name or (word_value(d.knobs["name"]) if "name" in d.knobs else ""),
            knobs=dict(d.knobs),
            group=tuple(self.drafts[i].name for i in d.group),
            line=d.line,
            knob_lines=dict(d.knob_lines),
            items=tuple(d.items),
            inputs=tuple(None if i is None else self.drafts[i].name for i in d.inputs),
            truncated=d.truncated,
        )


# ---------------------------------------------------------------------------------------------
# Small value helpers


def _parse_number(token: str) -> Optional[float]:
    """A Nuke number token: roto hex float (``x44852000``) or decimal; None otherwise."""
    if not token:
        return None
    if token[0] == "x":
        return parse_hex_float(token) if is_hex_float(token) else None
    if _DECIMAL_RE.match(token):
        return float(token)
    low = token.lower()
    if low in ("inf", "+inf", "-inf", "nan"):
        return float(low)
    return None


def _parse_int(token: Optional[str]) -> Optional[int]:
    if token is None:
        return None
    token = token.strip()
    if _INT_RE.match(token):
        return int(token)
    value = _parse_number(token)
    if value is not None and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def _int_knob(node: NkNode, knob: str, default: int) -> int:
    text = node.value(knob)
    if text is None:
        return default
    value = _parse_int(text)
    if value is None:
        raise NkParseError(
            f"{node.path}: knob '{knob}' is {text[:60]!r}, not a whole number; set it to a "
            "plain frame number in Nuke (expressions are not evaluated)",
            knob=knob,
            line=node.knob_lines.get(knob),
        )
    return value


def parse_format(text: str) -> Optional[NkFormat]:
    """Read a format knob: ``"W H X Y R T PA NAME"``, ``"W H PA NAME"`` or a built-in name.

    Returns None when the text is neither a format spelled out nor a built-in format name.
    """
    tokens = text.split()
    if not tokens:
        return None
    nums: List[float] = []
    for tok in tokens:
        value = _parse_number(tok)
        if value is None or not math.isfinite(value):
            break
        nums.append(value)
    if len(nums) >= 2:
        w, h = nums[0], nums[1]
        if w != int(w) or h != int(h) or not (0 < w < 1e6 and 0 < h < 1e6):
            return None
        if len(nums) >= 7:
            aspect, name_tokens = nums[6], tokens[7:]
        elif len(nums) >= 3:
            aspect, name_tokens = nums[2], tokens[3:]
        else:
            aspect, name_tokens = 1.0, tokens[2:]
        if not aspect > 0:
            aspect = 1.0
        return NkFormat(int(w), int(h), float(aspect), " ".join(name_tokens))
    name = " ".join(tokens)
    known = NUKE_FORMATS.get(name)
    if known is None:
        return None
    return NkFormat(known[0], known[1], known[2], name)
