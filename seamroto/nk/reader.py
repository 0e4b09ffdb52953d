"""Read Nuke ``.nk`` scripts into nodes, and Read/Tracker4/Roto nodes into SeamRoto data.

Nothing in a script is executed: expressions, ``[python ...]`` and Python knobs stay text. The
grammar follows real Nuke-saved files (see ``shared/reference/nk/FORMAT.md``): nodes are
``Class { knob value ... }`` blocks, ``Group {...}`` ... ``end_group`` nest names, Roto shapes
live in the ``curves`` brace tree and Tracker4 tracks in the ``tracks`` table.

Coordinates are converted once, here, with ``seamroto.coords``: Nuke (y up, origin bottom-left)
to ours (y down, origin top-left). Absolute y becomes ``height - y``; relative offsets (tangents,
feather) change sign.

Every failure is an :class:`~seamroto.errors.NkParseError` (or ``NkNodeNotFoundError`` from
:func:`find_node`), whatever the input bytes; a truncated file is read as far as it goes and
the loss is reported in ``NkScript.warnings``.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import (
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from seamroto import coords
from seamroto.datamodel import ControlPoint, LandmarkSample, LandmarkTrack, RotoShape, Shot, Vec2
from seamroto.errors import NkNodeNotFoundError, NkParseError
from seamroto.nk.numbers import is_hex_float, parse_hex_float
from seamroto.nk.tokens import (
    WORD_BARE,
    WORD_BRACE,
    Command,
    TreeItem,
    Word,
    decode_nk,
    iter_commands,
    parse_tree,
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
# Bounds that keep garbage from turning into huge loops or lists.
MAX_CONSTANT_TRACK_FRAMES = 100_000

# Nuke's defaults when the Root node omits a knob.
DEFAULT_FIRST_FRAME = 1
DEFAULT_LAST_FRAME = 100
DEFAULT_FPS = 24.0

# Tracker4 `tracks` table: column indices when the table has no header (FORMAT.md section 3).
TRACK_COL_NAME = 1
TRACK_COL_X = 2
TRACK_COL_Y = 3

# Roto control-point flags (FORMAT.md 2.3, bit list from NukeFXSExporter).
ROTO_OPEN_FLAG = 1 << 5
# A key time this close to an integer is that frame; hex key times are exact in practice.
FRAME_TOLERANCE = 1e-3
# Number of slots in the Nuke 15 curvegroup/layer transform block and the identity values.
TRANSFORM_SLOTS = 13
TRANSFORM_IDENTITY = {3: 0.0, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0, 9: 1.0, 10: 1.0, 11: 1.0, 12: 0.0}

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
_SCRIPT_DIR_RE = re.compile(
    r"\[file dirname \[value root\.name\]\]|\[python \{?nuke\.script_directory\(\)\}?\]"
)
_WINDOWS_ABS_RE = re.compile(r"^[A-Za-z]:[/\\]")
_INTERP_LETTERS = frozenset("KLSRCZklIi")
_SLOPE_PREFIXES = "stuv"

T = TypeVar("T")


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


def _knob_format(script: NkScript, node: NkNode) -> Optional[NkFormat]:
    text = node.value("format")
    if text is None:
        return None
    fmt = parse_format(text)
    if fmt is None and script.format is not None and text.strip() == script.format.name:
        return script.format
    return fmt


def node_format(script: NkScript, node: NkNode) -> Optional[NkFormat]:
    """The format a node works in: its own ``format`` knob, else upstream, else the Root's.

    Walks input 0 through the node stack (and from a Group's Input node to the Group's input)
    to the first node with a ``format`` knob (Read, Constant, Reformat...). A named format
    unknown to Nuke's built-in list falls back to the Root format.
    """
    seen: Set[int] = set()
    current: Optional[NkNode] = node
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.value("format") is not None:
            fmt = _knob_format(script, current)
            return fmt if fmt is not None else script.format
        current = _upstream(script, current)
    return script.format


def _upstream(script: NkScript, node: NkNode) -> Optional[NkNode]:
    if node.node_class == "Input" and node.group:
        number = _parse_int(node.value("number")) or 0
        group_node = script.node_at(node.group[:-1], node.group[-1])
        if group_node is None or not 0 <= number < len(group_node.inputs):
            return None
        name = group_node.inputs[number]
        return None if name is None else script.node_at(group_node.group, name)
    if not node.inputs or node.inputs[0] is None:
        return None
    return script.node_at(node.group, node.inputs[0])


def knob_tree(script: NkScript, node: NkNode, knob: str) -> List[TreeItem]:
    """The content of a braced knob as nested token lists (``curves``, ``tracks``).

    Raises:
        NkParseError: The knob is missing or its braces do not balance.
    """
    raw = node.knobs.get(knob)
    if raw is None:
        raise NkParseError(
            f"{node.path} ({node.node_class}) has no '{knob}' knob",
            path=script.path,
            knob=knob,
            line=node.line,
        )
    line = node.knob_lines.get(knob, node.line)
    try:
        return parse_tree(word_value(raw), line=line, what=f"knob '{knob}' of {node.path}")
    except NkParseError as err:
        raise NkParseError(err.message, path=script.path, knob=knob, line=err.line) from err


# ---------------------------------------------------------------------------------------------
# Finding nodes


def find_node(
    script: NkScript,
    name: Optional[str] = None,
    node_class: Optional[str] = None,
    *,
    group: Optional[Sequence[str]] = None,
) -> NkNode:
    """The one node matching a name (plain or full ``Group1.Roto1`` path) and/or class.

    Args:
        script: Parsed script.
        name: Node name, or its full dotted path when the name exists in several Groups.
        node_class: Class to match (``Roto``, ``Tracker4``); alone it must match one node.
        group: Restrict to nodes directly inside this Group path.

    Raises:
        NkNodeNotFoundError: Nothing matches, or several nodes do (the message lists them).
    """
    if name is None and node_class is None:
        raise NkNodeNotFoundError(
            "give a node name or a node class to look for", path=script.path
        )
    nodes: Sequence[NkNode] = script.nodes
    if group is not None:
        wanted = tuple(group)
        nodes = [n for n in nodes if n.group == wanted]
    if node_class is not None:
        nodes = [n for n in nodes if n.node_class == node_class]
    matches = list(nodes)
    if name is not None:
        matches = [n for n in nodes if n.path == name] or [n for n in nodes if n.name == name]
    if len(matches) == 1:
        return matches[0]
    what = " ".join(
        p for p in (f"class {node_class}" if node_class else "", f"'{name}'" if name else "") if p
    )
    if not matches:
        if node_class is not None:
            have = [n.path for n in script.nodes if n.node_class == node_class]
            listing = (
                f"{node_class} nodes in the script: {', '.join(have[:30])}"
                if have
                else f"the script has no {node_class} node; classes present: "
                + ", ".join(sorted({n.node_class for n in script.nodes})[:30])
            )
        else:
            listing = "nodes in the script: " + ", ".join(n.path for n in script.nodes[:30])
        raise NkNodeNotFoundError(f"no node {what}; {listing}", path=script.path)
    raise NkNodeNotFoundError(
        f"{len(matches)} nodes match {what}: {', '.join(n.path for n in matches[:30])}; pass the "
        "full name (Group.Node) to pick one",
        path=script.path,
    )


# ---------------------------------------------------------------------------------------------
# Read nodes


def read_node_shot(script: NkScript, node: NkNode) -> Shot:
    """The plate sequence a Read node reads: file pattern, frame range and format.

    A relative ``file`` resolves against the script's folder (as Nuke's default project
    directory does); ``[file dirname [value root.name]]`` is replaced by that folder too. A
    format given by name only falls back to the Root's format when it is not built in.

    Raises:
        NkParseError: No file, a frame range that is not plain numbers, or no format.
    """
    return _guard(script, node, "file", lambda: _read_node_shot(script, node))


def _read_node_shot(script: NkScript, node: NkNode) -> Shot:
    file_text = node.value("file")
    if not file_text:
        raise NkParseError(
            f"{node.path} ({node.node_class}) has no 'file' knob; pick a Read node",
            path=script.path,
            knob="file",
            line=node.line,
        )
    plates = _resolve_path(script, file_text)
    first = _int_knob(node, "first", 1)
    last = _int_knob(node, "last", first)
    if last < first:
        raise NkParseError(
            f"{node.path}: last frame {last} is before first frame {first}",
            path=script.path,
            knob="last",
            line=node.knob_lines.get("last"),
        )
    fmt = node_format(script, node)
    if fmt is None:
        raise NkParseError(
            f"{node.path}: no format on the node and none on the Root node; set the Read's "
            "format in Nuke and save again",
            path=script.path,
            knob="format",
            line=node.line,
        )
    colourspace = node.value("colorspace")
    if colourspace:
        m = re.fullmatch(r"default(?: \((.*)\))?", colourspace.strip())
        if m is not None:
            colourspace = m.group(1)
    if colourspace:
        return Shot(plates, first, last, fmt.width, fmt.height, fmt.pixel_aspect, colourspace)
    return Shot(plates, first, last, fmt.width, fmt.height, fmt.pixel_aspect)


def _resolve_path(script: NkScript, path_text: str) -> str:
    folder = script.folder
    if folder is not None:
        path_text = _SCRIPT_DIR_RE.sub(lambda _m: folder.replace("\\", "/"), path_text)
    if "[" in path_text:
        logger.warning("file path %r holds a TCL expression; it is kept unevaluated", path_text)
        return path_text
    is_abs = (
        path_text.startswith(("/", "\\"))
        or bool(_WINDOWS_ABS_RE.match(path_text))
        or "://" in path_text
    )
    if is_abs or folder is None:
        return path_text
    return os.path.normpath(os.path.join(folder, path_text))


# ---------------------------------------------------------------------------------------------
# Animation curves (Tracker4 cells and ordinary knobs; decimal text)


@dataclass(frozen=True)
class _Curve:
    """An animation cell: keys (frame -> value, file order), or a constant, or an expression."""

    keys: Dict[float, float]
    constant: Optional[float] = None
    expression: Optional[str] = None

    @cached_property
    def _sorted(self) -> Tuple[List[float], List[float]]:
        xs = sorted(self.keys)
        return xs, [self.keys[x] for x in xs]

    def at(self, frame: float) -> Optional[float]:
        if frame in self.keys:
            return self.keys[frame]
        if self.constant is not None:
            return self.constant
        if not self.keys:
            return None
        xs, ys = self._sorted
        return _interp(xs, ys, frame)


def _interp(xs: Sequence[float], ys: Sequence[float], t: float) -> float:
    """Linear in between keys, held outside (Nuke's default constant extrapolation)."""
    if t <= xs[0]:
        return ys[0]
    if t >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, t)
    x0, x1 = xs[i - 1], xs[i]
    if x1 == x0:
        return ys[i]
    w = (t - x0) / (x1 - x0)
    return ys[i - 1] + w * (ys[i] - ys[i - 1])


def _is_key_token(tok: str) -> bool:
    if tok in _INTERP_LETTERS:
        return True
    if tok[0] == "x" and _parse_number(tok[1:]) is not None:
        return True
    return _parse_number(tok) is not None


def parse_anim_curve(cell: TreeItem) -> _Curve:
    """Read one animated value: ``{curve K x1001 1 2 x1010 5}``, ``{expr x68 0}``, ``12``.

    Keys follow the NDK curve grammar: ``xN`` sets the frame of the next value; a value without
    one lands where the last two keys point (one frame on after a single key, starting at 0);
    interpolation letters and ``s``/``t``/``u``/``v`` slopes are skipped.

    Raises:
        NkParseError: A token that is none of these.
    """
    if isinstance(cell, str):
        value = _parse_number(cell)
        if value is not None:
            return _Curve({}, constant=value)
        return _Curve({}, expression=cell)
    tokens: List[TreeItem] = list(cell)
    expression: Optional[str] = None
    i = 0
    if tokens and tokens[0] == "curve":
        i = 1
    elif tokens and (not isinstance(tokens[0], str) or not _is_key_token(tokens[0])):
        first = tokens[0]
        expression = first if isinstance(first, str) else "{...}"
        i = 1
    keys: Dict[float, float] = {}
    order: List[float] = []
    next_x: Optional[float] = None
    skip_next = False
    for tok in tokens[i:]:
        if skip_next:
            skip_next = False
            continue
        if not isinstance(tok, str):
            raise NkParseError("a nested brace inside an animation curve")
        if tok in _INTERP_LETTERS:
            continue
        c = tok[0]
        if c == "x":
            x = _parse_number(tok[1:])
            if x is None or not math.isfinite(x):
                raise NkParseError(f"bad key frame {tok[:30]!r} in an animation curve")
            next_x = x
            continue
        if c in _SLOPE_PREFIXES:
            if len(tok) == 1:
                skip_next = True
                continue
            if _parse_number(tok[1:]) is not None:
                continue
        value = _parse_number(tok)
        if value is None:
            raise NkParseError(f"unexpected {tok[:30]!r} in an animation curve")
        if next_x is None:
            if len(order) >= 2:
                next_x = order[-1] + (order[-1] - order[-2])
            elif order:
                next_x = order[-1] + 1.0
            else:
                next_x = 0.0
        keys[next_x] = value
        order.append(next_x)
        next_x = None
    return _Curve(keys, expression=expression)


# ---------------------------------------------------------------------------------------------
# Tracker4


def tracker_tracks(
    script: NkScript,
    node: NkNode,
    height: float,
    *,
    warnings: Optional[List[str]] = None,
) -> List[LandmarkTrack]:
    """The tracks of a Tracker4 node as landmark tracks in image space (y down).

    Names come from column 1, positions from track_x/track_y (columns 2, 3, or by header name).
    Every key of either curve is a sample; ``keyed`` is True where both x and y have a key
    (the other is interpolated where only one does). Keys set by an expression cell
    (``{translate.x+center.x x68 0}``) are kept as stored. A track with constant x and y is
    sampled, unkeyed, over the Root frame range.

    Args:
        script: Parsed script.
        node: A Tracker4 node.
        height: Height in pixels of the node's format (``node_format``), for the y flip.
        warnings: Optional list that collects what was skipped.

    Raises:
        NkParseError: The node has no ``tracks`` table or the table is malformed.
    """
    return _guard(
        script, node, "tracks", lambda: _tracker_tracks(script, node, height, warnings)
    )


def _tracker_tracks(
    script: NkScript, node: NkNode, height: float, warnings: Optional[List[str]]
) -> List[LandmarkTrack]:
    tree = knob_tree(script, node, "tracks")

    def fail(message: str) -> NkParseError:
        return NkParseError(
            f"{node.path}: tracks table {message}",
            path=script.path,
            knob="tracks",
            line=node.knob_lines.get("tracks", node.line),
        )

    def note(message: str) -> None:
        text = f"{node.path}: {message}"
        logger.warning("%s", text)
        if warnings is not None:
            warnings.append(text)

    lists = [item for item in tree if isinstance(item, list)]
    if not lists:
        raise fail("is empty")
    info = lists[0]
    body = lists[1:]
    if not all(isinstance(v, str) for v in info):
        raise fail("does not start with its size block '{ 1 31 N }'")
    columns = TRACK_COL_NAME, TRACK_COL_X, TRACK_COL_Y
    if body and _is_track_header(body[0]):
        header = body[0]
        names = [h[3] if len(h) > 3 and isinstance(h[3], str) else "" for h in header]
        lookup = {n: i for i, n in enumerate(names) if isinstance(n, str)}
        columns = (
            lookup.get("name", TRACK_COL_NAME),
            lookup.get("track_x", TRACK_COL_X),
            lookup.get("track_y", TRACK_COL_Y),
        )
        body = body[1:]
    if not body:
        return []
    rows = body[0]
    col_name, col_x, col_y = columns
    tracks: List[LandmarkTrack] = []
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise fail(f"row {index + 1} is not a brace list")
        name_cell = row[col_name] if col_name < len(row) else None
        name = name_cell if isinstance(name_cell, str) and name_cell else f"track {index + 1}"
        if max(col_x, col_y) >= len(row):
            note(f"track '{name}' has only {len(row)} cells; no position read")
            tracks.append(LandmarkTrack(name, {}))
            continue
        try:
            cx = parse_anim_curve(row[col_x])
            cy = parse_anim_curve(row[col_y])
        except NkParseError as err:
            raise fail(f"track '{name}': {err.message}") from err
        tracks.append(LandmarkTrack(name, _track_samples(script, name, cx, cy, height, note)))
    return tracks


def _is_track_header(block: List[TreeItem]) -> bool:
    return bool(block) and all(
        isinstance(h, list)
        and len(h) >= 4
        and all(isinstance(v, str) for v in h)
        and _INT_RE.match(str(h[0])) is not None
        for h in block
    )


def _track_samples(
    script: NkScript,
    name: str,
    cx: _Curve,
    cy: _Curve,
    height: float,
    note: Callable[[str], None],
) -> Dict[int, LandmarkSample]:
    samples: Dict[int, LandmarkSample] = {}
    if cx.keys or cy.keys:
        frames = sorted(set(cx.keys) | set(cy.keys))
        keyed_both = set(cx.keys) & set(cy.keys)
        skipped = 0
        for f in frames:
            frame = _frame_of(f)
            x = cx.at(f)
            y = cy.at(f)
            if frame is None or x is None or y is None or not math.isfinite(x + y):
                skipped += 1
                continue
            y_img = coords.y_img_from_nuke(y, height)
            samples[frame] = LandmarkSample(x, y_img, 1.0, f in keyed_both)
        if skipped:
            note(f"track '{name}': skipped {skipped} keys (sub-frame, non-finite or no value)")
        return samples
    if cx.constant is not None and cy.constant is not None:
        if script.frame_range is None or not math.isfinite(cx.constant + cy.constant):
            note(f"track '{name}' is a constant position with no frame range to place it on")
            return samples
        first, last = script.frame_range
        if last - first >= MAX_CONSTANT_TRACK_FRAMES:
            note(f"track '{name}' is a constant position over an implausible range {first}-{last}")
            return samples
        y_img = coords.y_img_from_nuke(cy.constant, height)
        for frame in range(first, last + 1):
            samples[frame] = LandmarkSample(cx.constant, y_img, 1.0, False)
        return samples
    note(f"track '{name}' has no keys (expression without stored values); no samples")
    return samples


def _frame_of(t: float) -> Optional[int]:
    if not math.isfinite(t):
        return None
    r = round(t)
    if abs(t - r) > FRAME_TOLERANCE:
        return None
    return int(r)


# ---------------------------------------------------------------------------------------------
# Roto / RotoPaint curves


Dim = Union[float, List[Tuple[float, float]]]  # constant, or (time, value) keys sorted by time


@dataclass(frozen=True)
class _CC:
    """One ``{cc ...}`` block: flags, the shared key times (``px``) and 3 elements per point."""

    flags: int
    times: Optional[List[float]]
    elements: List[Tuple[Dim, Dim]]


class _RotoContext:
    """What a shape read needs to know about its node (for messages and fallbacks)."""

    def __init__(
        self, script: NkScript, node: NkNode, height: float, warnings: Optional[List[str]]
    ) -> None:
        self.script = script
        self.node = node
        self.height = height
        self.warnings = warnings
        self.line = node.knob_lines.get("curves", node.line)

    def fail(self, shape: str, message: str) -> NkParseError:
        return NkParseError(
            f"{self.node.path}: shape '{shape}' {message}",
            path=self.script.path,
            knob="curves",
            line=self.line,
        )

    def note(self, message: str) -> None:
        text = f"{self.node.path}: {message}"
        logger.warning("%s", text)
        if self.warnings is not None:
            self.warnings.append(text)

    def static_frame(self, attrs: Mapping[str, TreeItem]) -> int:
        """Frame for a shape with no key times: its ``ltn`` (drawn-on frame) or the node's."""
        ltn = attrs.get("ltn")
        if isinstance(ltn, str):
            value = _parse_number(ltn)
            frame = None if value is None else _frame_of(value)
            if frame is not None:
                return frame
        start = _parse_int(self.node.value("lifetime_start"))
        if start is not None:
            return start
        if self.script.first_frame is not None:
            return self.script.first_frame
        return DEFAULT_FIRST_FRAME


def roto_shapes(
    script: NkScript,
    node: NkNode,
    height: float,
    *,
    warnings: Optional[List[str]] = None,
) -> List[RotoShape]:
    """The Bezier/B-spline shapes of a Roto or RotoPaint node, in image space (y down).

    Every control point (left tangent, centre, right tangent, FORMAT.md 2.4) is evaluated at
    every key time of its shape; a dimension with one entry is constant. Tangents stay relative
    to the centre, the feather point relative to the centre, feather tangents relative to the
    feather point; feather tangents equal to the main ones become None (``idem``). Shapes with
    no key times (untimed ``{p ...}``) are keyed once, at the frame they were drawn on
    (attribute ``ltn``). Paint strokes (``cubiccurve``) are skipped. Curvegroup and layer
    transforms are not applied (a warning says when one is not identity).

    Args:
        script: Parsed script.
        node: A Roto or RotoPaint node.
        height: Height in pixels of the node's format (``node_format``), for the y flip.
        warnings: Optional list that collects what was skipped.

    Raises:
        NkParseError: The ``curves`` knob is malformed; the message names the shape.
    """
    return _guard(script, node, "curves", lambda: _roto_shapes(script, node, height, warnings))


def _roto_shapes(
    script: NkScript, node: NkNode, height: float, warnings: Optional[List[str]]
) -> List[RotoShape]:
    if "curves" not in node.knobs:
        if node.node_class in ROTO_CLASSES:
            return []
        raise NkParseError(
            f"{node.path} is a {node.node_class}, not a Roto or RotoPaint node",
            path=script.path,
            knob="curves",
            line=node.line,
        )
    content = word_value(node.knobs["curves"]).lstrip()
    ctx = _RotoContext(script, node, height, warnings)
    if content.startswith("AnimTree:"):
        raise NkParseError(
            f"{node.path}: roto data is in the pre-Nuke-7 AnimTree format; open the script in "
            "Nuke 7 or later and save it again",
            path=script.path,
            knob="curves",
            line=ctx.line,
        )
    tree = knob_tree(script, node, "curves")
    top = _find_list(tree, "n")
    if top is None:
        if not content:
            return []
        raise NkParseError(
            f"{node.path}: knob 'curves' has no '{{n ...}}' node list",
            path=script.path,
            knob="curves",
            line=ctx.line,
        )
    shapes: List[RotoShape] = []
    # Depth-first, file order, without recursion: (children iterator, layer path below Root).
    stack: List[Tuple[Iterator[TreeItem], Tuple[str, ...]]] = []
    for item in top[1:]:
        if isinstance(item, list) and item and item[0] == "layer":
            _check_transform(ctx, item, f"layer {_name_of(item)}")
            stack.append((iter(item[2:]), ()))
            while stack:
                children, path = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    continue
                if not isinstance(child, list) or not child:
                    continue
                head = child[0]
                if head == "layer":
                    _check_transform(ctx, child, f"layer {_name_of(child)}")
                    stack.append((iter(child[2:]), (*path, _name_of(child))))
                elif head == "curvegroup":
                    shape = _read_curvegroup(ctx, child, path)
                    if shape is not None:
                        shapes.append(shape)
    return shapes


def _find_list(tree: List[TreeItem], head: str) -> Optional[List[TreeItem]]:
    """Breadth-first search (a few levels) for the list whose first token is ``head``."""
    level: List[List[TreeItem]] = [tree]
    for _ in range(4):
        nxt: List[List[TreeItem]] = []
        for lst in level:
            for item in lst:
                if isinstance(item, list) and item:
                    if item[0] == head:
                        return item
                    nxt.append(item)
        level = nxt
    return None


def _name_of(item: List[TreeItem]) -> str:
    return item[1] if len(item) > 1 and isinstance(item[1], str) else "?"


def _read_curvegroup(
    ctx: _RotoContext, cg: List[TreeItem], layer: Tuple[str, ...]
) -> Optional[RotoShape]:
    name = _name_of(cg)
    flags = _parse_int(cg[2]) if len(cg) > 2 and isinstance(cg[2], str) else None
    kind = cg[3] if len(cg) > 3 and isinstance(cg[3], str) else "bezier"
    main: Optional[List[TreeItem]] = None
    feather: Optional[List[TreeItem]] = None
    attrs: Dict[str, TreeItem] = {}
    for item in cg[4:]:
        if not isinstance(item, list) or not item:
            continue
        head = item[0]
        if head == "cc":
            if main is None:
                main = item
        elif head in ("t", "tx"):
            _check_transform(ctx, item, f"shape {name}")
        elif head == "a":
            attrs = _attributes(item)
        elif isinstance(head, list) or head == "idem":
            ccs = [x for x in item if isinstance(x, list) and x and x[0] == "cc"]
            if ccs and main is None:
                main = ccs[0]
                feather = ccs[1] if len(ccs) > 1 else None
    if main is None:
        raise ctx.fail(name, "has no control-point data ('cc' block)")
    if kind == "bspline":
        ctx.note(f"shape '{name}' is a B-spline; its points are read as Bezier control points")
    main_cc = _read_cc(ctx, name, main)
    feather_cc = _read_cc(ctx, name, feather) if feather is not None else None
    npts = len(main_cc.elements) // 3
    if feather_cc is not None and len(feather_cc.elements) != len(main_cc.elements):
        raise ctx.fail(
            name,
            f"has {len(main_cc.elements)} main and {len(feather_cc.elements)} feather "
            "elements; they must match",
        )
    closed = not ((flags or 0) & ROTO_OPEN_FLAG or main_cc.flags & ROTO_OPEN_FLAG)
    times = _shape_times(main_cc)
    if not times:
        times = [float(ctx.static_frame(attrs))]
    keys: Dict[int, Tuple[ControlPoint, ...]] = {}
    dropped = 0
    for t in times:
        frame = _frame_of(t)
        if frame is None:
            dropped += 1
            continue
        keys[frame] = tuple(_point(ctx, name, main_cc, feather_cc, i, t) for i in range(npts))
    if dropped:
        ctx.note(f"shape '{name}': skipped {dropped} sub-frame or non-finite key times")
    feather_width = _attr_number(attrs, "fx", 0.0)
    falloff = _attr_number(attrs, "ff", 1.0)
    return RotoShape(name, closed, keys, layer, feather_width, falloff)


def _attributes(item: List[TreeItem]) -> Dict[str, TreeItem]:
    out: Dict[str, TreeItem] = {}
    values = item[1:]
    for k in range(0, len(values) - 1, 2):
        key = values[k]
        if isinstance(key, str):
            out[key] = values[k + 1]
    return out


def _attr_number(attrs: Mapping[str, TreeItem], name: str, default: float) -> float:
    value = attrs.get(name)
    number = _parse_number(value) if isinstance(value, str) else None
    return number if number is not None and math.isfinite(number) else default


def _check_transform(ctx: _RotoContext, item: List[TreeItem], what: str) -> None:
    """Warn when a shape/layer carries a non-identity transform (points are not moved)."""
    for sub in item[2:] if item and item[0] == "layer" else [item]:
        if not (isinstance(sub, list) and sub and sub[0] == "t"):
            continue
        slots = sub[1:]
        if len(slots) != TRANSFORM_SLOTS:
            continue
        for index, identity in TRANSFORM_IDENTITY.items():
            for value in _slot_values(slots[index]):
                if value != identity:
                    ctx.note(
                        f"{what} has a transform (slot {index} = {value:g}); its points are "
                        "read untransformed"
                    )
                    return


def _slot_values(slot: TreeItem) -> List[float]:
    if isinstance(slot, str):
        value = _parse_number(slot)
        return [] if value is None else [value]
    out: List[float] = []
    for key in slot:
        if isinstance(key, list) and len(key) >= 2 and isinstance(key[1], str):
            value = _parse_number(key[1])
            if value is not None:
                out.append(value)
        elif isinstance(key, str):
            value = _parse_number(key)
            if value is not None:
                out.append(value)
    return out


def _read_cc(ctx: _RotoContext, shape: str, cc: List[TreeItem]) -> _CC:
    flags = 0
    data: Optional[List[TreeItem]] = None
    for item in cc[1:]:
        if isinstance(item, list) and item:
            if item[0] == "f" and len(item) > 1 and isinstance(item[1], str):
                flags = _parse_int(item[1]) or 0
            elif item[0] in ("p", "px"):
                data = item
    if data is None:
        raise ctx.fail(shape, "has a 'cc' block without point data ('p' or 'px')")
    times: Optional[List[float]] = None
    raw_elements: List[TreeItem]
    if data[0] == "px":
        if len(data) < 2:
            raise ctx.fail(shape, "has 'px' without key times")
        spec = data[1]
        tokens = [spec] if isinstance(spec, str) else spec
        times = []
        for tok in tokens:
            value = _parse_number(tok) if isinstance(tok, str) else None
            if value is None or not math.isfinite(value):
                raise ctx.fail(shape, f"has a bad key time {str(tok)[:30]!r}")
            times.append(value)
        if not times:
            raise ctx.fail(shape, "has an empty key-time list")
        raw_elements = data[2:]
    else:
        raw_elements = data[1:]
    if len(raw_elements) % 3:
        raise ctx.fail(
            shape,
            f"has {len(raw_elements)} elements; Bezier points come in threes (left tangent, "
            "centre, right tangent)",
        )
    elements: List[Tuple[Dim, Dim]] = []
    for el in raw_elements:
        if not isinstance(el, list):
            raise ctx.fail(shape, f"has a bare {el[:30]!r} where a point element belongs")
        dx = _read_dim(ctx, shape, el[0] if len(el) > 0 else "0", times)
        dy = _read_dim(ctx, shape, el[1] if len(el) > 1 else "0", times)
        elements.append((dx, dy))
    return _CC(flags, times, elements)


def _read_dim(
    ctx: _RotoContext, shape: str, item: TreeItem, times: Optional[List[float]]
) -> Dim:
    """One coordinate of one element: constant, keyed per shared time, or keyed per point."""
    if isinstance(item, str):
        return _number_or_fail(ctx, shape, item)
    if not item:
        return 0.0
    entries: TreeItem = item
    first = item[0]
    if isinstance(first, str) and first.startswith("="):
        # Expression-linked ({=expr {f N} value}): keep the value Nuke stored with it.
        rest = [x for x in item[1:] if not (isinstance(x, list) and x and x[0] == "f")]
        if not rest:
            return 0.0
        entries = rest[-1]
        if isinstance(entries, str):
            return _number_or_fail(ctx, shape, entries)
    elif isinstance(first, list) and first and first[0] == "f":
        if len(item) < 2:
            return 0.0
        entries = item[1]
        if isinstance(entries, str):
            return _number_or_fail(ctx, shape, entries)
    if not isinstance(entries, list):
        return 0.0
    if times is None:
        return _timed_entries(ctx, shape, entries)
    values = _untimed_entries(ctx, shape, entries, len(times))
    if len(values) == 1:
        return values[0]
    if len(values) != len(times):
        raise ctx.fail(
            shape,
            f"has a curve with {len(values)} values for {len(times)} key times",
        )
    return sorted(zip(times, values))


def _number_or_fail(ctx: _RotoContext, shape: str, token: TreeItem) -> float:
    value = _parse_number(token) if isinstance(token, str) else None
    if value is None or not math.isfinite(value):
        raise ctx.fail(shape, f"has {str(token)[:30]!r} where a number belongs")
    return value


def _untimed_entries(
    ctx: _RotoContext, shape: str, entries: List[TreeItem], limit: int
) -> List[float]:
    """Entries of a ``px`` curve: ``v``, ``{v -}``, ``{v ls la rs ra}``, ``{x N entry}``.

    ``limit`` is the number of key times; a run longer than that is malformed.
    """
    out: List[float] = []
    for entry in entries:
        if isinstance(entry, str):
            out.append(_number_or_fail(ctx, shape, entry))
            continue
        if not entry:
            out.append(0.0)
            continue
        head = entry[0]
        if head == "x":
            count = _parse_int(entry[1]) if len(entry) > 2 and isinstance(entry[1], str) else None
            if count is None or count < 0 or len(out) + count > limit:
                raise ctx.fail(shape, "has a malformed run '{x N ...}'")
            inner = entry[2]
            token = inner if isinstance(inner, str) else (inner[0] if inner else "0")
            out.extend([_number_or_fail(ctx, shape, token)] * count)
            continue
        out.append(_number_or_fail(ctx, shape, head))
    return out


def _timed_entries(
    ctx: _RotoContext, shape: str, entries: List[TreeItem]
) -> List[Tuple[float, float]]:
    """Entries of a ``p`` curve keyed per point: ``{t v ...}``; ``{t}`` means value 0."""
    keys: Dict[float, float] = {}
    for entry in entries:
        if not isinstance(entry, list) or not entry:
            raise ctx.fail(shape, "has a per-point keyed curve with an entry without a time")
        t = _number_or_fail(ctx, shape, entry[0])
        v = 0.0
        if len(entry) > 1 and entry[1] != "-":
            v = _number_or_fail(ctx, shape, entry[1])
        keys[t] = v
    return sorted(keys.items())


def _shape_times(cc: _CC) -> List[float]:
    if cc.times is not None:
        return sorted(set(cc.times))
    found: Set[float] = set()
    for dx, dy in cc.elements:
        for d in (dx, dy):
            if isinstance(d, list):
                found.update(t for t, _ in d)
    return sorted(found)


def _eval(dim: Dim, t: float) -> float:
    if isinstance(dim, float):
        return dim
    if not dim:
        return 0.0
    xs = [k for k, _ in dim]
    i = bisect.bisect_left(xs, t)
    if i < len(xs) and xs[i] == t:
        return dim[i][1]
    return _interp(xs, [v for _, v in dim], t)


def _pair(cc: _CC, index: int, t: float) -> Vec2:
    dx, dy = cc.elements[index]
    return (_eval(dx, t), _eval(dy, t))


def _rel(v: Vec2) -> Vec2:
    """A relative offset, Nuke -> image: dy changes sign (``+ 0.0`` turns -0.0 into 0.0)."""
    return (v[0] + 0.0, coords.dy_flip(v[1]) + 0.0)


def _point(
    ctx: _RotoContext, shape: str, main: _CC, feather: Optional[_CC], i: int, t: float
) -> ControlPoint:
    left = _pair(main, 3 * i, t)
    centre = _pair(main, 3 * i + 1, t)
    right = _pair(main, 3 * i + 2, t)
    if not all(math.isfinite(v) for v in (*left, *centre, *right)):
        raise ctx.fail(shape, f"point {i} is not finite at frame {t:g}")
    x = centre[0]
    y = coords.y_img_from_nuke(centre[1], ctx.height)
    left_img, right_img = _rel(left), _rel(right)
    if feather is None:
        return ControlPoint(x, y, left_img, right_img)
    f_left = _rel(_pair(feather, 3 * i, t))
    f_off = _rel(_pair(feather, 3 * i + 1, t))
    f_right = _rel(_pair(feather, 3 * i + 2, t))
    if not all(math.isfinite(v) for v in (*f_left, *f_off, *f_right)):
        raise ctx.fail(shape, f"feather of point {i} is not finite at frame {t:g}")
    return ControlPoint(
        x,
        y,
        left_img,
        right_img,
        f_off,
        None if f_left == left_img else f_left,
        None if f_right == right_img else f_right,
    )


# ---------------------------------------------------------------------------------------------
# Safety net


def _guard(script: NkScript, node: NkNode, knob: str, fn: Callable[[], T]) -> T:
    """Run a typed read so that garbage input only ever surfaces as NkParseError."""
    try:
        return fn()
    except NkParseError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error) as err:
        logger.debug("unexpected structure in %s.%s", node.path, knob, exc_info=True)
        raise NkParseError(
            f"{node.path}: knob '{knob}' has an unexpected structure ({type(err).__name__}: "
            f"{err}); the file may be corrupt",
            path=script.path,
            knob=knob,
            line=node.knob_lines.get(knob, node.line),
        ) from err
