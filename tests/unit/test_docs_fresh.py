"""docs/messages.md is generated from the code; this fails when the two drift apart."""

from __future__ import annotations

from tasks.messages.schema import DOCS_PATH, REGENERATE, render_catalogue_markdown


def test_message_catalogue_docs_are_fresh() -> None:
    # Given the committed docs and a fresh rendering from the models
    committed = DOCS_PATH.read_text(encoding="utf-8")
    # When they are compared
    fresh = render_catalogue_markdown()
    # Then they are identical
    assert committed == fresh, f"docs/messages.md is stale; regenerate it with `{REGENERATE}`"
