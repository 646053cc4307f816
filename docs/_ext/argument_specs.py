"""A Sphinx directive that documents an Ansible role from its ``meta/argument_specs.yml``.

``{argument-specs} playbooks/roles/redis`` renders the role's short description and a
table of its variables (type, default, description) from the file ansible-core
validates the role's variables against: the documentation cannot drift from the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.application import Sphinx


def _text(value: Any) -> str:
    """An argument spec's description (a string or a list of paragraphs) as one line,
    its Ansible markup (``C(...)``, ``O(...)``) as literals."""
    parts = value if isinstance(value, list) else [value or ""]
    text = " ".join(str(p) for p in parts)
    for mark in ("C(", "O(", "V("):
        while mark in text:
            start = text.index(mark)
            end = text.index(")", start)
            text = f"{text[:start]}``{text[start + 2 : end]}``{text[end + 1 :]}"
    return text


def _default(option: dict[str, Any]) -> str:
    if option.get("required"):
        return "required"
    if "default" not in option or option["default"] is None:
        return "computed (see the description)"
    default = option["default"]
    if default == "":
        return "empty"
    return f"``{default!r}``" if not isinstance(default, str) else f"``{default}``"


class ArgumentSpecs(Directive):
    """``.. argument-specs:: playbooks/roles/NAME`` (relative to the repository)."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        root = Path(env.srcdir).parent
        role = root / self.arguments[0]
        path = role / "meta" / "argument_specs.yml"
        env.note_dependency(str(path))
        specs = yaml.safe_load(path.read_text())["argument_specs"]["main"]
        options: dict[str, dict[str, Any]] = specs.get("options") or {}
        lines = [_text(specs.get("short_description")) + ".", ""]
        if options:
            lines += [
                ".. list-table::",
                "   :header-rows: 1",
                "   :widths: 28 12 18 42",
                "",
                "   * - variable",
                "     - type",
                "     - default",
                "     - meaning",
            ]
            for name, option in options.items():
                kind = option.get("type", "str")
                if kind == "list" and option.get("elements"):
                    kind = f"list of {option['elements']}"
                lines += [
                    f"   * - ``{name}``",
                    f"     - {kind}",
                    f"     - {_default(option)}",
                    f"     - {_text(option.get('description'))}",
                ]
        else:
            lines.append("No variables.")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=str(path)), self.content_offset, container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("argument-specs", ArgumentSpecs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
