"""The Python producer client where producers have imported it from (`workers.client`); it
lives in workers/queue/client.py."""

from workers.queue.client import complete, envelope, publish, signed

__all__ = ["complete", "envelope", "publish", "signed"]
