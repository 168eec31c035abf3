"""The tag taxonomy: each tag's group and, optionally, its parent tag.

A CSV with lines ``tag,group[,parent]`` (a header line ``tag,group,...`` and ``#`` comments are
skipped), or the TAAC-2021 ``label_dimension.csv`` as it is: ``tag,id,dimension,super-group``,
recognised by its integer second column (the dimension is the group; the super-group names no
tag, so it is not a parent). Every error names the file and line and is exit code 2.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adtag.errors import AdtagError


@dataclass
class Taxonomy:
    group: dict[str, str]  # tag -> group
    parent: dict[str, str] = field(default_factory=dict)  # tag -> parent tag
    line: dict[str, int] = field(default_factory=dict)  # tag -> line it was defined on
    source: str = "<taxonomy>"

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(self.group.values()))

    @classmethod
    def from_file(cls, path: str | os.PathLike, tags: list[str] | None = None) -> Taxonomy:
        path = Path(path)
        if not path.is_file():
            raise AdtagError(f"{path}: taxonomy file not found")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise AdtagError(f"{path}: taxonomy is not UTF-8 text") from None
        tax = cls.parse(text.splitlines(), str(path))
        if tags is not None:
            tax.check_vocabulary(tags)
        return tax

    @classmethod
    def parse(cls, lines: list[str], source: str = "<taxonomy>") -> Taxonomy:
        group: dict[str, str] = {}
        parent: dict[str, str] = {}
        where: dict[str, int] = {}
        for lineno, row in enumerate(csv.reader(lines), start=1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if lineno == 1 and row[0].lower() == "tag":
                continue
            if len(row) < 2 or not row[0] or not row[1]:
                raise AdtagError(f"{source}:{lineno}: expected 'tag,group[,parent]', got {','.join(row)!r}")
            tag = row[0]
            if len(row) >= 3 and row[1].lstrip("-").isdigit():  # TAAC: tag,id,dimension[,super-group]
                grp, par = row[2], ""
            else:
                grp, par = row[1], row[2] if len(row) >= 3 else ""
            if not grp:
                raise AdtagError(f"{source}:{lineno}: tag {tag!r} has an empty group")
            if tag in group:
                if group[tag] != grp:
                    raise AdtagError(
                        f"{source}:{lineno}: tag {tag!r} is in two groups, {group[tag]!r} (line {where[tag]}) "
                        f"and {grp!r}"
                    )
                raise AdtagError(f"{source}:{lineno}: tag {tag!r} is listed twice (first on line {where[tag]})")
            group[tag], where[tag] = grp, lineno
            if par:
                if par == tag:
                    raise AdtagError(f"{source}:{lineno}: tag {tag!r} is its own parent")
                parent[tag] = par
        if not group:
            raise AdtagError(f"{source}: taxonomy lists no tag")
        tax = cls(group=group, parent=parent, line=where, source=source)
        tax._check_parents()
        return tax

    def _check_parents(self) -> None:
        for tag, par in self.parent.items():
            if par not in self.group:
                raise AdtagError(
                    f"{self.source}:{self.line[tag]}: parent {par!r} of {tag!r} is not a tag of the taxonomy"
                )
        for start in self.parent:
            seen = [start]
            t = start
            while t in self.parent:
                t = self.parent[t]
                if t in seen:
                    cycle = " -> ".join(seen[seen.index(t) :] + [t])
                    raise AdtagError(f"{self.source}:{self.line[start]}: parent cycle {cycle}")
                seen.append(t)

    def check_vocabulary(self, tags: list[str]) -> None:
        """A taxonomy tag the model does not know is an error naming its line."""
        known = set(tags)
        for tag, lineno in self.line.items():
            if tag not in known:
                raise AdtagError(f"{self.source}:{lineno}: unknown tag {tag!r}: the model's vocabulary lacks it")

    # ------------------------------------------------------------------ arrays over a vocabulary
    def group_index(self, tags: list[str]) -> tuple[np.ndarray, list[str]]:
        """Each tag's group number (-1 for a tag outside the taxonomy) and the group names."""
        names = self.groups
        pos = {g: i for i, g in enumerate(names)}
        return np.array([pos.get(self.group.get(t, ""), -1) for t in tags], dtype=np.int64), names

    def parent_index(self, tags: list[str]) -> np.ndarray:
        col = {t: i for i, t in enumerate(tags)}
        return np.array([col.get(self.parent.get(t, ""), -1) for t in tags], dtype=np.int64)

    def to_json(self) -> dict:
        return {"source": self.source, "group": self.group, "parent": self.parent}

    @classmethod
    def from_json(cls, obj: dict) -> Taxonomy:
        return cls(group=dict(obj["group"]), parent=dict(obj.get("parent", {})), source=obj.get("source", ""))
