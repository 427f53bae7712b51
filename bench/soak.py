"""The story soak at full size (issue 20): a seeded day of about 2,000 orders and 10,000
envelopes of every type, applied by `orderflow worker` (2 processes x 2 ingress consumers) on
the bench's servers; its envelopes/s against bare dramatiq with one INSERT, same run.

Three figures, each labelled for what it times:
- the mixed stream's ingress rate: per wave, from its first publish until the ingress consumer
  group holds no unread and no pending entry (every envelope applied, parked or quarantined),
  summed over the six waves;
- the same six waves end to end: each wave also waits for its captures, emails and egress to
  settle before the next is published (the oracle's soak; not an ingress rate);
- an unbroken mixed stream: the same day's waves concatenated and XADDed at once into a fresh
  database, timed until the group is drained; no oracle (the order of arrival differs from the
  story's), checked instead: nothing quarantined for `delivery_limit`, and every distinct valid
  envelope either has its inbox row or was refused by its handler (quarantined with its id).

`ORDERFLOW_SOAK_ORDERS` (default 2000) and `ORDERFLOW_SOAK_SEED` (default 20) choose the day;
`ORDERFLOW_BENCH_PROFILE=<folder>` (with `py-spy` on PATH) profiles the workers of each phase.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

from bench.baseline import Baseline, BenchContext, ResultRow
from bench.ingress_drain import profile_table, profiled, wait_drained
from models.db import migrate
from models.db.machinery import InboxEntry, ParkedMessage, QuarantinedMessage
from tests.e2e.conftest import Stack
from tests.fakes.stripe_server import StripeFake
from tests.soak.bed import API_KEY, SETTINGS, WAVE_S, Soak
from tests.soak.observe import EgressFollower
from tests.soak.story import Day, generate
from workers import processes
from workers.demo.smtp_sink import SmtpSink
from workers.runtime import open_runtime
from workers.settings import Settings

SHAPE = "`orderflow worker`, 2 processes x 2 ingress consumers (x 4 threads), 1 scheduler"
UNBROKEN_TIMEOUT_S = 1800.0


def soak_scenario(ctx: BenchContext) -> list[ResultRow]:
    """The waved soak (the row fails loudly if any effect is missing or duplicated), then the
    unbroken stream."""
    orders = int(os.environ.get("ORDERFLOW_SOAK_ORDERS", "2000"))
    seed = int(os.environ.get("ORDERFLOW_SOAK_SEED", "20"))
    bare = ctx.baseline()
    return [*_waves(ctx, orders, seed, bare), _unbroken(ctx, orders, seed, bare)]


@contextmanager
def _bed(ctx: BenchContext, seed: int) -> Iterator[Soak]:
    """A fresh database and an empty Redis, the fakes, and the workers started and consuming."""
    assert ctx.redis_server is not None
    assert ctx.postgres_server is not None
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
                yield soak
        finally:
            for proc in stack.started:
                proc.kill()
            stack.rt.close()


def _day(soak: Soak, seed: int, orders: int) -> Day:
    return generate(seed, orders, lambda a: soak.fake.create_authorized_intent(a, "eur"))


def _by_type(day: Day) -> Counter[str]:
    """Envelopes of each type in the stream, copies included (bad input is not counted)."""
    return Counter(str(i.body["type"]) for w in day.waves for i in w if isinstance(i.body, dict))


def _report_profile(profile: Path | None, day: Day) -> None:
    if profile is None or not profile.exists():
        return
    table = profile_table(profile, _by_type(day))
    profile.with_suffix(".md").write_text(table + "\n")
    print(f"profile {profile.stem}:\n{table}")


def _waves(ctx: BenchContext, orders: int, seed: int, bare: Baseline) -> list[ResultRow]:
    ingress_s: list[float] = []
    publish_s: list[float] = []  # of which publishing took (`orderflow publish` boots Python)

    def time_ingress(wave: int, began: float) -> None:
        publish_s.append(time.monotonic() - began)
        ingress_s.append(wait_drained(ctx.redis_url, WAVE_S) - began)

    with _bed(ctx, seed) as soak:
        day = _day(soak, seed, orders)
        with profiled(soak.workers[0].pid, "waves") as profile:
            soak.run(day, on_published=time_ingress)
        verdict = soak.verdict()
    _report_profile(profile, day)
    print(f"soak: {verdict.line()}")
    print(f"soak: ingress per wave {[round(s, 2) for s in ingress_s]}, of which publishing "
          f"{[round(s, 2) for s in publish_s]}, "
          f"end to end per wave {[round(s, 2) for s in soak.waves_s]}")  # fmt: skip
    assert (verdict.missing, verdict.duplicated, verdict.unexpected) == (0, 0, 0), (
        "\n".join(verdict.details[:40]))  # fmt: skip
    ingress = sum(ingress_s)
    per_wave = "/".join(f"{s:.1f}" for s in ingress_s)
    publishing = "/".join(f"{s:.1f}" for s in publish_s)
    waves = "/".join(f"{s:.1f}" for s in soak.waves_s)
    return [
        ResultRow("soak", "mixed stream ingress rate, 6 waves (publish to group drained, summed)",
                  day.envelopes, ingress, day.envelopes / ingress / bare.insert_per_s,
                  f"{SHAPE}; seed {seed}, {orders} orders; per wave from its first publish "
                  "(XADD pipeline, then `orderflow publish`) until XINFO GROUPS shows no unread "
                  f"and no pending entry, s: {per_wave} (of which publishing: {publishing}); "
                  "the workers run that wave's captures, emails and egress at the same time"),
        ResultRow("soak", "mixed stream end to end, 6 waves each settled (not an ingress rate)",
                  day.envelopes, soak.seconds, day.envelopes / soak.seconds / bare.insert_per_s,
                  f"same run; each wave also waits for captures, emails, egress and parked "
                  f"messages before the next, polled every 0.5 s; s: {waves}; "
                  f"{verdict.line()}"),
    ]  # fmt: skip


def _unbroken(ctx: BenchContext, orders: int, seed: int, bare: Baseline) -> ResultRow:
    with _bed(ctx, seed) as soak:
        day = _day(soak, seed, orders)
        items = [item for wave in day.waves for item in wave]
        with profiled(soak.workers[0].pid, "unbroken") as profile:
            began = time.monotonic()
            soak.xadd_in_order(items)
            published = time.monotonic() - began
            seconds = wait_drained(ctx.redis_url, UNBROKEN_TIMEOUT_S) - began
        check = _check_unbroken(soak, day)
    _report_profile(profile, day)
    print(f"soak unbroken: {len(items)} entries in {seconds:.2f} s (published in "
          f"{published:.2f} s); {check}")  # fmt: skip
    return ResultRow(
        "soak", "mixed stream unbroken (all 6 waves concatenated, one XADD pipeline)",
        len(items), seconds, len(items) / seconds / bare.insert_per_s,
        f"{SHAPE}; same day, fresh database; from the first XADD (the pipeline took "
        f"{published:.1f} s) until XINFO GROUPS shows no unread and no pending entry; "
        f"captures, emails and egress run meanwhile, not waited for; no oracle: {check}",
    )  # fmt: skip


def _check_unbroken(soak: Soak, day: Day) -> str:
    """Nothing quarantined for `delivery_limit`; each distinct valid envelope has its inbox row
    (applied or parked) or was refused by its handler (quarantined under its id)."""
    valid = {str(i.body["id"]) for w in day.waves for i in w if isinstance(i.body, dict)}
    with soak.stack.rt.db.sessions() as session:
        inbox = set(session.scalars(select(InboxEntry.envelope_id)))
        refused = set(session.scalars(select(QuarantinedMessage.envelope_id).where(
            QuarantinedMessage.envelope_id.is_not(None))))  # fmt: skip
        limit = int(session.scalar(select(func.count()).select_from(QuarantinedMessage).where(
            QuarantinedMessage.reason == "delivery_limit")) or 0)  # fmt: skip
        parked = int(session.scalar(select(func.count()).select_from(ParkedMessage)) or 0)
    refused_valid = (refused & valid) - inbox
    line = (f"delivery_limit={limit} distinct_valid={len(valid)} inbox_rows={len(inbox)} "
            f"refused_by_handlers={len(refused_valid)} parked_at_drain={parked}")  # fmt: skip
    assert limit == 0, line
    assert inbox <= valid, f"inbox rows for envelopes never sent: {line}"
    assert len(inbox) + len(refused_valid) == len(valid), line
    return line
