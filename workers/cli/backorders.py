"""What the CLI shows about backorders: restock decisions, recent restocks, a dry run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.commerce import Restock, RestockDecision
from models.domain.backorders import ReleasePolicy
from tasks.backorders.restock import plan


def decisions_for(session: Session, order_id: int) -> list[dict[str, Any]]:
    """Every restock decision about one order, oldest first."""
    query = (
        select(Restock, RestockDecision)
        .join(Restock, Restock.id == RestockDecision.restock_id)
        .where(RestockDecision.order_id == order_id)
        .order_by(RestockDecision.id)
    )
    return [
        {
            "restock_id": restock.id,
            "sku": restock.sku,
            "received": restock.quantity,
            "at": restock.at.isoformat(),
            "outcome": decision.outcome,
            "reason": decision.reason,
        }
        for restock, decision in session.execute(query)
    ]


def recent_restocks(session: Session, limit: int = 10) -> list[dict[str, Any]]:
    """The newest restocks with what each released and skipped."""
    query = select(Restock).order_by(Restock.id.desc()).limit(limit)
    return [
        {
            "restock_id": r.id,
            "sku": r.sku,
            "received": r.quantity,
            "policy": r.policy,
            "considered": r.considered,
            "released": r.released,
            "skipped": r.skipped,
            "available_after": r.available_after,
            "at": r.at.isoformat(),
        }
        for r in session.scalars(query)
    ]


def preview(session: Session, sku: str, quantity: int, policy: str) -> dict[str, Any]:
    """What receiving `quantity` of `sku` would release now; changes nothing."""
    decided = plan(session, sku, quantity, ReleasePolicy(policy))
    decisions = [
        {
            "number": w.number,
            "outcome": outcome,
            "reason": why,
            "lines": dict(sorted(w.needs.items())),
        }
        for w, outcome, why in decided.decisions()
    ]
    return {
        "sku": sku,
        "received": quantity,
        "policy": policy,
        "decisions": decisions,
        "released": len(decided.released),
        "available_after": decided.available_after.get(sku, 0),
    }
