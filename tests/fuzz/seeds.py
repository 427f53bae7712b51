"""Seed corpus and libFuzzer dictionary for the atheris harnesses. Coverage guidance cannot see
inside the C JSON parser, so random bytes rarely become JSON: the fuzzers start from the signed
golden samples (and signed webhook events) and splice in the envelope format's tokens."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tasks.messages.catalogue import KNOWN_TYPES
from tests import factories as f
from tests.fakes import stripe_events as se
from workers.http.stripe_signature import signature_header
from workers.http.stripe_webhooks import HANDLED_TYPES

# The signature harness's Stripe mode checks headers at this time; its seeds are signed then.
STRIPE_NOW = 1_772_442_900
ENVELOPE_MODE, STRIPE_MODE = b"\x00", b"\x80"
_TOKENS = [
    "{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "\\ud800", "true", "false", "null", "-0",
    "1e999", "NaN", "9007199254740992", "\ufeff", '"id"', '"type"', '"version"', '"data"',
    '"occurred_at"', '"producer"', '"correlation_id"', '"signature"', '"key_id"', '"alg"',
    '"value"', '"hmac-sha256"', f'"{f.KEY_ID}"', '"2026-03-04T12:00:00Z"', "t=", "v1=", "v0=",
    *(f'"{name}"' for name in sorted(KNOWN_TYPES | HANDLED_TYPES)),
]  # fmt: skip


def envelope_seeds() -> list[bytes]:
    """Each golden sample, signed: compact, pretty, escaped, and unsigned."""
    seeds = []
    for type_ in sorted(KNOWN_TYPES):
        envelope = f.envelope(type_)
        seeds.append(f.body(envelope))
        seeds.append(json.dumps(envelope, indent=2, ensure_ascii=True).encode())
        seeds.append(f.body(f.envelope(type_, signed=False)))
    return seeds


def stripe_seeds() -> list[bytes]:
    """Webhook posts as `header LF body`, signed at STRIPE_NOW."""
    seeds = []
    for type_ in sorted(HANDLED_TYPES):
        body = se.body(se.event(type_))
        seeds.append(signature_header(body, se.WEBHOOK_SECRET, STRIPE_NOW).encode() + b"\n" + body)
    return seeds


def _dictionary_line(token: str) -> str:
    escaped = "".join(
        f"\\x{byte:02x}" if byte < 0x20 or byte > 0x7E or byte in b'"\\' else chr(byte)
        for byte in token.encode()
    )
    return f'"{escaped}"'


def prepare(harness: str, workdir: Path) -> tuple[Path, Path]:
    """A seeded corpus directory and a dictionary file for `harness` (decoder or signature)."""
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    if harness == "decoder":
        seeds = envelope_seeds()
    else:
        seeds = [ENVELOPE_MODE + s for s in envelope_seeds()]
        seeds += [STRIPE_MODE + s for s in stripe_seeds()]
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index:03d}").write_bytes(seed)
    dictionary = workdir / "tokens.dict"
    dictionary.write_text("\n".join(_dictionary_line(t) for t in _TOKENS) + "\n")
    return corpus, dictionary


def libfuzzer_argv(argv: list[str], harness: str) -> list[str]:
    """`argv` with a seeded corpus and the dictionary added unless it names its own."""
    args = argv[1:]
    if any(not arg.startswith("-") for arg in args) and any(a.startswith("-dict=") for a in args):
        return argv
    corpus, dictionary = prepare(harness, Path(tempfile.mkdtemp(prefix=f"fuzz-{harness}-")))
    extra = [] if any(a.startswith("-dict=") for a in args) else [f"-dict={dictionary}"]
    if not any(not arg.startswith("-") for arg in args):
        extra.append(str(corpus))
    return [argv[0], *args, *extra]


def main(argv: list[str]) -> None:
    """`python -m tests.fuzz.seeds decoder|signature DIR`: a lasting seeded corpus in DIR."""
    if len(argv) != 3 or argv[1] not in ("decoder", "signature"):
        raise SystemExit("usage: python -m tests.fuzz.seeds decoder|signature DIR")
    corpus, dictionary = prepare(argv[1], Path(argv[2]))
    print(f"-dict={dictionary} {corpus}")


if __name__ == "__main__":
    main(sys.argv)
