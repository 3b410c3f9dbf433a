"""YAML loading that remembers where every key came from.

Values come from ``yaml.safe_load``; a second pass over ``yaml.compose`` (which builds nodes, never
objects) records the line and column of each key, so errors can say ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from starlabel.errors import DescriptorIssue

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed YAML document with the position of each key.

    Attributes
    ----------
    file : str
        Name used in messages.
    data : Any
        The value ``yaml.safe_load`` returned.
    marks : dict
        ``(key, 1, key) -> (line, column)``, 1-based, of each mapping key and sequence item.
    duplicates : list of DescriptorIssue
        Keys that appear twice in one mapping (YAML silently keeps the last).
    """

    file: str
    data: Any
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[DescriptorIssue] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of ``path`` or of its nearest ancestor that exists in the file."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path][0]
            path = path[:-1]
        return self.marks.get((), (None, None))[0]

    def issue(self, path: KeyPath, message: str) -> DescriptorIssue:
        """A :class:`DescriptorIssue` at ``path`` (dotted key and line filled in)."""
        return DescriptorIssue(self.file, self.line_of(path), dotted(path), message)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse ``text`` safely.

    Raises
    ------
    starlabel.errors.DescriptorError
        On a syntax error, with file:line:column.
    """
    from starlabel.errors import DescriptorError

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable YAML"
        if error.context and error.problem:
            context = error.context
            if error.context_mark is not None and error.context_mark is not mark:
                context += f" started at line {error.context_mark.line + 1}, column {error.context_mark.column + 1}"
            problem += f" ({context})"
        raise DescriptorError(
            [
                DescriptorIssue(
                    file,
                    mark.line + 1 if mark else None,
                    "",
                    f"YAML syntax error: {problem}",
                    column=mark.column + 1 if mark else None,
                )
            ]
        ) from None
    except yaml.YAMLError as error:
        raise DescriptorError([DescriptorIssue(file, None, "", f"YAML error: {error}")]) from None
    doc = YamlDocument(file, data)
    if node is not None:
        doc.marks[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
        _walk(node, (), doc)
    return doc


def _walk(node: yaml.Node, path: KeyPath, doc: YamlDocument) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            here = (*path, key)
            if key in seen:
                doc.duplicates.append(
                    DescriptorIssue(
                        doc.file, key_node.start_mark.line + 1, dotted(here), "key appears twice in this mapping"
                    )
                )
            seen.add(key)
            doc.marks[here] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, here, doc)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            here = (*path, index)
            doc.marks[here] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, here, doc)


def dotted(path: KeyPath) -> str:
    """``("auxiliary", 1, "provider")`` → ``"auxiliary[1].provider"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
