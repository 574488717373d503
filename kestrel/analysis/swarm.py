"""Turning the panel's votes into one signal: SOLO passes its analyst through; SWARM takes a
confidence-weighted vote that must reach an agreement threshold.

SWARM, with weight w and confidence c per analyst that voted (abstainers excluded):

    support(action) = sum(w * c over votes for action) / sum(w over every vote)

The winner is BUY or SELL, whichever has more support, if that support is at least the
threshold and strictly more than the other side's; its confidence is its support (so the
pre-trade confidence gate judges the panel, not one member). Otherwise HOLD. HOLD votes add
to the denominator only: a panel that mostly says HOLD cannot reach agreement on a trade.
Fewer than `min_votes` votes (abstentions do not count) is HOLD whatever they say.

Pure: no I/O, so tests run it over tables of votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from kestrel.analysis.base import Vote
from kestrel.models import Action, Signal
from kestrel.models.analysis import Abstention, Consensus

Mode = Literal["SOLO", "SWARM"]


def _describe(vote: Vote) -> str:
    if isinstance(vote, Abstention):
        return f"{vote.analyst} abstained ({vote.kind})"
    return f"{vote.analyst} {vote.action.value} {vote.confidence:.2f}"


def solo(vote: Vote, weight: float = 1.0) -> tuple[Signal, Consensus]:
    if isinstance(vote, Abstention):
        signal = Signal(
            action=Action.HOLD,
            confidence=0.0,
            reasoning=f"analyst {vote.analyst} abstained ({vote.kind}): {vote.detail}",
            analyst=vote.analyst,
        )
        consensus = Consensus(mode="SOLO", threshold=0.0, abstained=1)
        return signal, consensus
    support = {vote.action.value: vote.confidence}
    consensus = Consensus(
        mode="SOLO",
        threshold=0.0,
        support=support,
        agreement=vote.confidence,
        reached=vote.action is not Action.HOLD,
        voters=1,
        weights={vote.analyst: weight},
    )
    return vote, consensus


def _levels(supporters: list[Signal]) -> dict[str, Decimal | None]:
    """The most careful of the supporters' suggestions: the highest stop (tightest), the
    nearest target, the lowest entry."""
    stops = [s.suggested_stop_loss for s in supporters if s.suggested_stop_loss is not None]
    targets = [s.suggested_take_profit for s in supporters if s.suggested_take_profit is not None]
    entries = [s.suggested_entry for s in supporters if s.suggested_entry is not None]
    return {
        "suggested_stop_loss": max(stops) if stops else None,
        "suggested_take_profit": min(targets) if targets else None,
        "suggested_entry": min(entries) if entries else None,
    }


def swarm(
    votes: Sequence[tuple[Vote, float]], *, threshold: float, min_votes: int = 1
) -> tuple[Signal, Consensus]:
    """`votes` are (vote, weight) pairs in panel order."""
    cast = [(v, w) for v, w in votes if isinstance(v, Signal)]
    abstained = len(votes) - len(cast)
    weights = {v.analyst: w for v, w in votes if isinstance(v, Signal)}
    panel = "; ".join(_describe(v) for v, _ in votes)
    if len(cast) < max(min_votes, 1):
        consensus = Consensus(
            mode="SWARM", threshold=threshold, voters=len(cast), abstained=abstained,
            weights=weights,
        )  # fmt: skip
        reasoning = f"quorum not met: {len(cast)} of {len(votes)} voted, need {min_votes} ({panel})"
        return Signal(action=Action.HOLD, confidence=0.0, reasoning=reasoning, analyst="swarm"), (
            consensus
        )
    total = sum(w for _, w in cast)
    support = {
        action.value: round(sum(w * v.confidence for v, w in cast if v.action is action) / total, 6)
        for action in Action
    }
    buy, sell = support[Action.BUY.value], support[Action.SELL.value]
    best = Action.BUY if buy > sell else Action.SELL if sell > buy else None
    agreement = max(buy, sell)
    reached = best is not None and agreement >= threshold
    consensus = Consensus(
        mode="SWARM",
        threshold=threshold,
        support=support,
        agreement=round(agreement, 6),
        reached=reached,
        voters=len(cast),
        abstained=abstained,
        weights=weights,
    )
    if not reached or best is None:
        why = "tie" if best is None and agreement > 0 else f"{agreement:.2f} < {threshold:.2f}"
        return (
            Signal(
                action=Action.HOLD,
                confidence=0.0,
                reasoning=f"no consensus (BUY {buy:.2f}, SELL {sell:.2f}: {why}); {panel}",
                analyst="swarm",
            ),
            consensus,
        )
    supporters = [v for v, _ in cast if v.action is best]
    signal = Signal(
        action=best,
        confidence=round(min(agreement, 1.0), 4),
        reasoning=f"{best.value} backed by {agreement:.2f} of the panel (>= {threshold:.2f}); "
        f"{panel}",
        analyst="swarm",
        **_levels(supporters),
    )
    return signal, consensus


def dissent(final: Action, votes: Sequence[Vote]) -> list[Signal]:
    """Votes that disagree with the final action (abstentions are recorded separately)."""
    return [v for v in votes if isinstance(v, Signal) and v.action is not final]


def abstentions(votes: Sequence[Vote]) -> list[Abstention]:
    return [v for v in votes if isinstance(v, Abstention)]
