"""Email templates (Jinja2), the Renderer port: ours in workers/adapters/templates, overridable
from a configured folder.

Customer text (names, notes) only ever arrives as template *values*: it is escaped in HTML and
never evaluated, and line breaks in subjects become spaces, so it cannot add headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from tasks.ports import Rendered


def environment(override_dir: Path | None = None) -> SandboxedEnvironment:
    """Templates from `override_dir` first, then ours; HTML autoescaped."""
    loaders: list[BaseLoader] = [PackageLoader("workers.adapters", "templates")]
    if override_dir is not None:
        loaders.insert(0, FileSystemLoader(str(override_dir)))
    return SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=lambda name: bool(name and name.endswith(".html")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(env: SandboxedEnvironment, template: str, context: dict[str, Any]) -> Rendered:
    """Render `<template>.subject.txt`, `.txt` and `.html`."""
    subject = env.get_template(f"{template}.subject.txt").render(context)
    return Rendered(
        subject=" ".join(subject.splitlines()).strip()[:200],
        text=env.get_template(f"{template}.txt").render(context),
        html=env.get_template(f"{template}.html").render(context),
    )


class JinjaRenderer:
    """Renderer over a sandboxed Jinja2 environment (see `environment`)."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self.env = environment(override_dir)

    def render(self, template: str, context: dict[str, Any]) -> Rendered:
        """Render `<template>.subject.txt`, `.txt` and `.html`."""
        return render(self.env, template, context)
