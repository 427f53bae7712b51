"""docs/deploy/redis-users.acl on a real redis-server: what the producer and worker users may do,
and every refusal named exactly (NOPERM), with nothing changed by a refused command."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.conftest import unavailable
from tests.redis_acl import ACL_FILE, AclRedis, denials, refusal, start_acl_redis
from tests.services import ServiceError
from workers.adapters import egress_stream as egress
from workers.queue import streams
from workers.queue.broker import NAMESPACE, DeadWorkerSweeper
from workers.queue.streams import EGRESS_STREAM, INGRESS_STREAM
from workers.settings import Settings

pytestmark = pytest.mark.integration
QUEUE = f"{NAMESPACE}:default"  # one of dramatiq's queues of ours: a list of message ids
OTHER_KEY = "billing:invoices"  # another application's key on the same server
_SET_KEY = "return redis.call('SET', KEYS[1], 'forged')"
EVENT = {"id": "ev-1", "type": "fulfillment.submitted", "version": 1, "data": {"number": "M1"}}


@pytest.fixture(scope="module")
def acl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclRedis]:
    try:
        server = start_acl_redis(tmp_path_factory.mktemp("acl-redis"))
    except ServiceError as error:
        unavailable(str(error))
    yield server
    server.stop()


@pytest.fixture
def admin(acl: AclRedis) -> Iterator[redis.Redis]:
    """Our server's default user, on an emptied server (ours: the test started it)."""
    acl.server.flushall()
    with acl.admin() as client:
        client.acl_log_reset()
        yield client


def _snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key and its whole content, to show that a refused command changed nothing."""
    raw: Any = client
    dump = {}
    for key in sorted(raw.keys("*")):
        kind = raw.type(key)
        if kind == b"stream":
            dump[key] = (raw.xrange(key), raw.xinfo_groups(key))
        elif kind == b"list":
            dump[key] = raw.lrange(key, 0, -1)
        elif kind == b"hash":
            dump[key] = raw.hgetall(key)
        else:
            dump[key] = raw.dump(key)
    return dump


def _seed(acl: AclRedis, admin: redis.Redis) -> None:
    """What a running installation holds: the worker's group and an egress event, a queued job,
    and a key of another application."""
    with acl.client("worker") as worker:
        streams.ensure_group(worker)
        assert egress.append_once(worker, EVENT, 1000) is True
    admin.rpush(QUEUE, "job-1")
    admin.hset(f"{QUEUE}.msgs", "job-1", '{"actor_name":"run_job"}')
    admin.set(OTHER_KEY, "secret figures")
    admin.hset("billing:totals", "march", "1200")
    admin.xadd("billing:events", {"event": "paid"})


def test_the_producer_appends_to_ingress_and_reads_egress(
    acl: AclRedis, admin: redis.Redis
) -> None:
    # Given an installation with one event on the egress stream
    _seed(acl, admin)
    with acl.client("producer") as producer:
        # When the producer appends an envelope and reads the egress stream every documented way
        producer.xadd(INGRESS_STREAM, {"envelope": b'{"id":"e-1"}'})
        ranged: Any = producer.xrange(EGRESS_STREAM)
        reversed_: Any = producer.xrevrange(EGRESS_STREAM)
        read: Any = producer.xread({EGRESS_STREAM: "0"}, count=10)
        length = producer.xlen(EGRESS_STREAM)
        info: Any = producer.xinfo_stream(EGRESS_STREAM)
    # Then the envelope is on the ingress stream, and the event was read
    enqueued: Any = admin.xrange(INGRESS_STREAM)
    assert [fields for _, fields in enqueued] == [{b"envelope": b'{"id":"e-1"}'}]
    appended: Any = admin.xrange(EGRESS_STREAM)
    event = appended[0]
    assert ranged == [event]
    assert reversed_ == [event]
    assert read == [[EGRESS_STREAM.encode(), [event]]]
    assert (length, info["length"]) == (1, 1)
    assert denials(admin, "producer") == set()


def _producer_attempts(producer: Any, sha: str) -> dict[str, Callable[[], Any]]:
    # execute_command as redis-cli sends commands: some have no typed wrapper here.
    return {
        "XADD egress": lambda: producer.xadd(EGRESS_STREAM, {"event": "{}"}),
        "XRANGE ingress": lambda: producer.xrange(INGRESS_STREAM),
        "XREAD ingress": lambda: producer.xread({INGRESS_STREAM: "0"}),
        "DEL ingress": lambda: producer.delete(INGRESS_STREAM),
        "XTRIM ingress": lambda: producer.xtrim(INGRESS_STREAM, maxlen=0),
        "XGROUP DESTROY": lambda: producer.xgroup_destroy(INGRESS_STREAM, streams.INGRESS_GROUP),
        "LPUSH queue": lambda: producer.lpush(QUEUE, "forged"),
        "RPOP queue": lambda: producer.rpop(QUEUE),
        "DEL queue": lambda: producer.delete(QUEUE),
        "HSET queue": lambda: producer.hset(f"{QUEUE}.msgs", "forged", "{}"),
        "EVAL": lambda: producer.eval("return 1", 0),
        "EVALSHA": lambda: producer.evalsha(sha, 0),
        "SCRIPT LOAD": lambda: producer.script_load("return 1"),
        "FUNCTION LOAD": lambda: producer.execute_command(
            "FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('x', function() end)"
        ),
        "FCALL": lambda: producer.execute_command("FCALL", "x", 0),
        "FLUSHALL": producer.flushall,
        "FLUSHDB": producer.flushdb,
        "GET other": lambda: producer.get(OTHER_KEY),
        "XRANGE other": lambda: producer.xrange("billing:events"),
        "KEYS": lambda: producer.keys("*"),
        "CONFIG GET": lambda: producer.config_get("*"),
    }


def test_the_producer_is_refused_everything_else_and_nothing_changes(
    acl: AclRedis, admin: redis.Redis
) -> None:
    # Given an installation with a queued job, both streams, and another application's keys
    _seed(acl, admin)
    sha = admin.script_load("return 1")
    before = _snapshot(admin)
    # When the producer tries to write egress, read ingress, touch the job queues, run scripts,
    # flush, or read keys that are not its
    with acl.client("producer") as producer:
        results = {name: refusal(call) for name, call in _producer_attempts(producer, sha).items()}
    # Then each is refused, by command or by key
    assert results == {
        "XADD egress": "NOPERM key",
        "XRANGE ingress": "NOPERM key",
        "XREAD ingress": "NOPERM key",
        "DEL ingress": "NOPERM command del",
        "XTRIM ingress": "NOPERM command xtrim",
        "XGROUP DESTROY": "NOPERM command xgroup|destroy",
        "LPUSH queue": "NOPERM command lpush",
        "RPOP queue": "NOPERM command rpop",
        "DEL queue": "NOPERM command del",
        "HSET queue": "NOPERM command hset",
        "EVAL": "NOPERM command eval",
        "EVALSHA": "NOPERM command evalsha",
        "SCRIPT LOAD": "NOPERM command script|load",
        "FUNCTION LOAD": "NOPERM command function|load",
        "FCALL": "NOPERM command fcall",
        "FLUSHALL": "NOPERM command flushall",
        "FLUSHDB": "NOPERM command flushdb",
        "GET other": "NOPERM command get",
        "XRANGE other": "NOPERM key",
        "KEYS": "NOPERM command keys",
        "CONFIG GET": "NOPERM command config|get",
    }
    # And nothing changed: every key holds what it held; Redis logged each refusal
    assert _snapshot(admin) == before
    commands = {r.removeprefix("NOPERM command ") for r in results.values() if "command" in r}
    assert denials(admin, "producer") == {("command", name) for name in commands} | {
        ("key", EGRESS_STREAM),
        ("key", INGRESS_STREAM),
        ("key", "billing:events"),
    }
    assert len(commands) == 16


def test_the_worker_is_refused_administration_and_other_applications_keys(
    acl: AclRedis, admin: redis.Redis
) -> None:
    # Given an installation and another application's keys
    _seed(acl, admin)
    before = _snapshot(admin)
    # When the worker user tries administrative commands and other keys
    with acl.client("worker") as worker:
        raw: Any = worker
        results = {
            "FLUSHALL": refusal(raw.flushall),
            "FLUSHDB": refusal(raw.flushdb),
            "CONFIG SET": refusal(lambda: raw.config_set("appendonly", "no")),
            "DEBUG": refusal(lambda: raw.execute_command("DEBUG", "SLEEP", "0")),
            "SHUTDOWN": refusal(lambda: raw.execute_command("SHUTDOWN", "NOSAVE")),
            "SCRIPT FLUSH": refusal(raw.script_flush),
            "FUNCTION LOAD": refusal(
                lambda: raw.execute_command("FUNCTION", "LOAD", "#!lua name=x\n")
            ),
            "HMGET other": refusal(lambda: raw.hmget("billing:totals", ["march"])),
            "DEL other": refusal(lambda: raw.delete(OTHER_KEY)),
            "SET other": refusal(lambda: raw.set(OTHER_KEY, "forged")),
            "XADD other": refusal(lambda: raw.xadd("billing:events", {"x": "y"})),
            "EVAL on other": refusal(lambda: raw.eval(_SET_KEY, 1, OTHER_KEY)),
        }
        # A script runs with its caller's permissions: a key it did not declare is refused too
        with pytest.raises(redis.ResponseError, match="script") as inside:
            raw.eval(f"return redis.call('SET', '{OTHER_KEY}', 'forged')", 0)
    # Then each is refused, and nothing changed
    assert results == {
        "FLUSHALL": "NOPERM command flushall",
        "FLUSHDB": "NOPERM command flushdb",
        "CONFIG SET": "NOPERM command config|set",
        "DEBUG": "NOPERM command debug",
        "SHUTDOWN": "NOPERM command shutdown",
        "SCRIPT FLUSH": "NOPERM command script|flush",
        "FUNCTION LOAD": "NOPERM command function|load",
        "HMGET other": "NOPERM key",
        "DEL other": "NOPERM key",
        "SET other": "NOPERM key",
        "XADD other": "NOPERM key",
        "EVAL on other": "NOPERM key",
    }
    assert not isinstance(inside.value, redis.exceptions.NoPermissionError)
    assert ("key", OTHER_KEY) in denials(admin, "worker")
    assert _snapshot(admin) == before
    assert acl.server.running


def test_the_worker_recovers_a_dead_workers_jobs_under_its_acl(
    acl: AclRedis, admin: redis.Redis
) -> None:
    # Given a worker that died holding job-1 (dramatiq's layout: its heartbeat is old, the id
    # sits in its acks set, the message in the queue's hash)
    admin.zadd(f"{NAMESPACE}:__heartbeats__", {"dead-worker": 0})
    admin.sadd(f"{NAMESPACE}:__acks__.dead-worker.default", "job-1")
    admin.hset(f"{QUEUE}.msgs", "job-1", '{"actor_name":"run_job"}')
    # When the dead-worker sweep runs as the worker user (dramatiq's clean-up script uses KEYS)
    settings = Settings(heartbeat_timeout_ms=1000, _env_file=None)
    sweeper = DeadWorkerSweeper(acl.url("worker"), settings, threading.Event())
    try:
        sweeper.sweep_once()
    finally:
        sweeper._broker.close()
    # Then the job is back on its queue, and the ACL refused nothing
    assert admin.lrange(QUEUE, 0, -1) == [b"job-1"]
    assert admin.exists(f"{NAMESPACE}:__acks__.dead-worker.default") == 0
    assert denials(admin, "worker") == set()


def test_a_wrong_password_is_refused_without_echoing_it(acl: AclRedis, admin: redis.Redis) -> None:
    # Given the producer's URL with a wrong password
    wrong = "wrong-pw-never-echoed"
    client = redis.Redis.from_url(acl.url("producer", password=wrong))
    # When it connects
    with pytest.raises(redis.AuthenticationError) as refused:
        client.ping()
    client.close()
    # Then it is refused, and the error names neither password
    assert wrong not in str(refused.value)
    assert acl.passwords["producer"] not in str(refused.value)
    assert admin.dbsize() == 0


def test_the_shipped_acl_file_holds_placeholders_and_matches_the_docs() -> None:
    # Given the shipped ACL file and docs/security.md
    text = ACL_FILE.read_text(encoding="utf-8")
    docs = ACL_FILE.parents[1].joinpath("security.md").read_text(encoding="utf-8").splitlines()
    # Then the file names both users with a placeholder where a password's hash goes, and no
    # password or passwordless user
    lines = text.splitlines()
    assert [line.split()[:4] for line in lines] == [
        ["user", "producer", "on", "#PRODUCER_PASSWORD_SHA256"],
        ["user", "worker", "on", "#WORKER_PASSWORD_SHA256"],
    ]
    assert ">" not in text
    assert "nopass" not in text
    # And docs/security.md shows exactly these lines
    assert [line in docs for line in lines] == [True, True]
