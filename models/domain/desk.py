"""How this desk is configured, as the rules see it: one typed value, one default each (the
composition root fills it from the settings; tools and tests take the defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from models.domain.backorders import ReleasePolicy
from models.domain.deadlines import DEFAULT_REMINDER_SHARE


@dataclass(frozen=True)
class DeskSettings:
    """What handlers and jobs read of the configuration."""

    # The order desk's address for its own emails (failed captures, lapsing holds); empty: none.
    desk_email: str = ""
    # Where in the confirmation window the desk is reminded.
    reminder_share: float = DEFAULT_REMINDER_SHARE
    # Whether a younger backorder may be released past an older blocked one.
    backorder_policy: ReleasePolicy = ReleasePolicy.SKIP_BLOCKED
