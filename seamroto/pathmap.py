"""OpenJD path mapping rules (``pathmapping-1.0``): map the paths inside a manifest like the farm maps parameters.

A farm worker may see the studio's storage under another root than the artist's machine
(``/mnt/show`` on Linux, ``S:`` on Windows), or a job-attachments session folder. Open Job Description maps
``PATH`` job parameters itself, and hands every task the same rules as a JSON file
(``{{Session.PathMappingRulesFile}}``) so that tools can map the paths *inside* the files they
read. ``seamroto batch --path-mapping-rules FILE`` does that for a manifest, with the rules' own
semantics: whole path components, Windows sources case-insensitive (ASCII only), the most
specific source first, and the first rule that matches wins.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from string import ascii_lowercase, ascii_uppercase
from typing import Any, Mapping, Optional, Tuple, Union

from seamroto.errors import PathMappingError

logger = logging.getLogger(__name__)

PATH_MAPPING_VERSION = "pathmapping-1.0"
SOURCE_FORMATS = ("POSIX", "WINDOWS")
_ASCII_LOWER = str.maketrans(ascii_uppercase, ascii_lowercase)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class PathMappingRule:
    """One rule: paths under ``source`` (written on a ``source_format`` machine) move to ``destination``."""

    source_format: str
    source: str
    destination: str

    def _source(self) -> PurePath:
        return PurePosixPath(self.source) if self.source_format == "POSIX" else PureWindowsPath(self.source)

    @property
    def specificity(self) -> int:
        """Number of components in the source; longer sources are tried first."""
        return len(self._source().parts)

    def apply(self, path: str) -> Optional[str]:
        """The mapped path, or None when ``path`` is not under this rule's source."""
        source = self._source()
        if self.source_format == "POSIX":
            parts: Tuple[str, ...] = PurePosixPath(path).parts
            matches = parts[: len(source.parts)] == source.parts
        else:
            parts = PureWindowsPath(path).parts
            head = parts[: len(source.parts)]
            matches = len(head) == len(source.parts) and all(
                a.translate(_ASCII_LOWER) == b.translate(_ASCII_LOWER) for a, b in zip(head, source.parts)
            )
        if not matches:
            return None
        return str(Path(self.destination, *parts[len(source.parts) :]))


@dataclass(frozen=True)
class PathMapping:
    """An ordered set of rules; an empty mapping leaves every path alone."""

    rules: Tuple[PathMappingRule, ...] = ()

    def map(self, path: str) -> str:
        """``path`` as this machine sees it (unchanged when no rule matches)."""
        for rule in self.rules:
            mapped = rule.apply(path)
            if mapped is not None:
                return mapped
        return path

    def __bool__(self) -> bool:
        return bool(self.rules)


def parse_path_mapping(doc: Mapping[str, Any], where: str = "") -> PathMapping:
    """Rules from a ``pathmapping-1.0`` dict; ``{}`` (what a session writes without rules) is no rule.

    URI sources (``s3://...``) cannot match a file path on disk and are skipped.

    Raises:
        PathMappingError: Another version, or a rule without its three fields.
    """
    if not doc:
        return PathMapping()
    if not isinstance(doc, Mapping) or doc.get("version") != PATH_MAPPING_VERSION:
        version = doc.get("version") if isinstance(doc, Mapping) else None
        raise PathMappingError(
            f"path mapping rules have version {version!r}, expected {PATH_MAPPING_VERSION!r}; pass the file "
            "the farm writes ({{Session.PathMappingRulesFile}})",
            path=where or None,
        )
    rules = []
    for i, raw in enumerate(doc.get("path_mapping_rules") or []):
        try:
            fmt = str(raw["source_path_format"]).upper()
            rule = PathMappingRule(fmt, str(raw["source_path"]), str(raw["destination_path"]))
        except (KeyError, TypeError) as err:
            raise PathMappingError(
                f"rule {i} needs source_path_format, source_path and destination_path ({err})", path=where or None
            ) from err
        if fmt not in SOURCE_FORMATS:
            logger.debug("path mapping rule %d (%s) is not for file paths; skipped", i, fmt)
            continue
        rules.append(rule)
    rules.sort(key=lambda r: -r.specificity)  # stable: equal lengths keep the file's order
    return PathMapping(tuple(rules))


def read_path_mapping(path: PathLike) -> PathMapping:
    """Rules from a ``pathmapping-1.0`` JSON file (``{{Session.PathMappingRulesFile}}``).

    Raises:
        PathMappingError: Unreadable, not JSON, or not a ``pathmapping-1.0`` document.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError) as err:
        raise PathMappingError(f"cannot read path mapping rules ({err})", path=str(p)) from err
    mapping = parse_path_mapping(doc, str(p))
    logger.info("path mapping: %d rule(s) from %s", len(mapping.rules), p)
    return mapping
