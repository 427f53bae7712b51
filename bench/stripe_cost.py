"""What a Stripe capture request alone costs on this machine: captures through orderflow's
Stripe adapter, with no dramatiq and no database, against the bench's fake, in the workers'
shape (their processes, each with the capture pool's threads). Reports the CPU time per
request of the client and of the fake, and that in bare INSERT messages' worth of machine.

Run as a child: `python -m bench.stripe_cost` reads [api base, key, amount, intent ids] as
JSON on stdin, captures them side by side, and prints its seconds and CPU seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.baseline import BenchContext, ResultRow
from tests.fakes.stripe_server import StripeFake
from workers.settings import Settings

_REPO = Path(__file__).resolve().parents[1]
POOL = int(Settings.model_fields["stripe_concurrency"].default)
_TIMEOUT_S = 300.0


def stripe_cost_row(
    ctx: BenchContext, fake: StripeFake, api_key: str, amount: int
) -> tuple[ResultRow, float]:
    """`ctx.messages` captures, split over the workers' processes; the time is the slowest
    child's, from its first call to its last answer. Also the machine time of one request,
    client and fake, in bare INSERT messages."""
    base = ctx.baseline()
    intents = [fake.create_authorized_intent(amount, "eur") for _ in range(ctx.messages)]
    before = len(fake.effects)
    fake_cpu = time.process_time()  # the fake serves from this process's threads
    parts = [intents[i :: base.processes] for i in range(base.processes)]
    children = [_start(json.dumps([fake.base_url, api_key, amount, part])) for part in parts]
    replies = [child.communicate(timeout=_TIMEOUT_S)[0] for child in children]
    fake_cpu = time.process_time() - fake_cpu
    if any(child.returncode for child in children):
        raise RuntimeError(f"stripe cost: a child failed: {[c.returncode for c in children]}")
    captured = Counter(e.pi_id for e in fake.effects[before:] if e.kind == "capture")
    if captured != dict.fromkeys(intents, 1):
        raise RuntimeError(f"stripe cost: {sum(captured.values())} captures of {len(intents)}")
    measured = [json.loads(reply) for reply in replies]
    seconds = max(m["seconds"] for m in measured)
    client_ms = sum(m["cpu"] for m in measured) / len(intents) * 1e3
    fake_ms = fake_cpu / len(intents) * 1e3
    insert_ms = (os.cpu_count() or 1) / base.insert_per_s * 1e3  # machine time of one
    equivalents = (client_ms + fake_ms) / insert_ms
    note = (f"{base.processes} processes x {POOL} threads, no dramatiq, no database; CPU per "
            f"request: client {client_ms:.2f} ms, fake {fake_ms:.2f} ms; together "
            f"{equivalents:.2f} bare INSERT messages of machine time")  # fmt: skip
    row = ResultRow("capture", "Stripe capture requests alone (adapter and fake)", len(intents),
                    seconds, len(intents) / seconds / base.insert_per_s, note)  # fmt: skip
    return row, equivalents


def _start(request: str) -> subprocess.Popen[str]:
    """A child reading `request` from a file, so every child runs before any is read."""
    with tempfile.TemporaryFile("w+") as stdin:
        stdin.write(request)
        stdin.seek(0)
        return subprocess.Popen([sys.executable, "-m", "bench.stripe_cost"], cwd=_REPO,
                                stdin=stdin, stdout=subprocess.PIPE, text=True)  # fmt: skip


def _child() -> None:
    from workers.adapters.stripe import StripeGateway

    api_base, api_key, amount, intents = json.loads(sys.stdin.read())
    gateway = StripeGateway(api_key, api_base)
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(POOL) as pool:
        list(pool.map(lambda pi: gateway.capture(pi, amount, f"bench:{pi}:capture"), intents))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu}))


if __name__ == "__main__":
    _child()
