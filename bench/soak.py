"""The story soak at full size (issue 20): a seeded day of about 2,000 orders and 10,000
envelopes of every type, applied by `orderflow worker` (2 processes x 2 ingress consumers) on
the bench's servers; its envelopes/s against bare dramatiq with one INSERT, same run.

`ORDERFLOW_SOAK_ORDERS` (default 2000) and `ORDERFLOW_SOAK_SEED` (default 20) choose the day."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from bench.baseline import BenchContext, ResultRow
from models.db import migrate
from tests.e2e.conftest import Stack
from tests.fakes.stripe_server import StripeFake
from tests.soak.bed import API_KEY, SETTINGS, Soak
from tests.soak.observe import EgressFollower
from tests.soak.story import generate
from workers import processes
from workers.demo.smtp_sink import SmtpSink
from workers.runtime import open_runtime
from workers.settings import Settings


def soak_scenario(ctx: BenchContext) -> list[ResultRow]:
    """One full-size soak; the row fails loudly if any effect is missing or duplicated."""
    assert ctx.redis_server is not None
    assert ctx.postgres_server is not None
    orders = int(os.environ.get("ORDERFLOW_SOAK_ORDERS", "2000"))
    seed = int(os.environ.get("ORDERFLOW_SOAK_SEED", "20"))
    bare = ctx.baseline()
    ctx.redis_server.flushall()  # the runner's own server
    url = ctx.postgres_server.create_database(f"bench_soak_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    with tempfile.TemporaryDirectory(prefix="orderflow-soak-") as workdir:
        values = {"database_url": url, "redis_url": ctx.redis_url,
                  "data_dir": str(Path(workdir) / "data"), **SETTINGS}  # fmt: skip
        env = processes.child_env({f"ORDERFLOW_{k.upper()}": str(v) for k, v in values.items()})
        settings = Settings(**values, _env_file=None)
        stack = Stack(settings=settings, env=env, rt=open_runtime(settings),
                      logs=Path(workdir) / "logs")  # fmt: skip
        try:
            with StripeFake.start(API_KEY, seed=seed) as fake, SmtpSink.start() as sink, \
                    EgressFollower(ctx.redis_url) as egress:  # fmt: skip
                soak = Soak.wire(stack, fake, sink, egress, ctx.postgres_server.log)
                soak.start(1, 2, 1)
                day = generate(seed, orders, lambda a: fake.create_authorized_intent(a, "eur"))
                soak.run(day)
                verdict = soak.verdict()
        finally:
            for proc in stack.started:
                proc.kill()
            stack.rt.close()
    print(f"soak: {verdict.line()}")
    assert (verdict.missing, verdict.duplicated, verdict.unexpected) == (0, 0, 0), (
        "\n".join(verdict.details[:40]))  # fmt: skip
    rate = day.envelopes / soak.seconds
    note = (f"`orderflow worker`, 2 processes x 2 ingress consumers, 1 scheduler; seed {seed}, "
            f"{orders} orders, 6 waves each settled (captures, emails, egress) before the next; "
            f"{verdict.line()}")  # fmt: skip
    return [ResultRow("soak", "mixed stream, full day (every type, copies, bad input)",
                      day.envelopes, soak.seconds, rate / bare.insert_per_s, note)]  # fmt: skip
