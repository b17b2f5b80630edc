"""Ranking given responses with the pairwise judge: what `/v1/critique` serves.

Two responses play one match; more run the same knockout as best-of-N. The winner is None
when the judge could not separate the top two (the deciding match fell to the coin) or all
responses are the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from critic_loop.config import MAX_CANDIDATES, SelfCriticConfig
from critic_loop.engine import Engine, Message
from critic_loop.images import images_of
from critic_loop.match import Judgment
from critic_loop.pairwise import PairJudge
from critic_loop.report import SelfCriticReport, TokenUsage
from critic_loop.tournament import Bracket, draw_seed, play_rounds


@dataclass(frozen=True)
class CritiqueResult:
    """The judge's ranking of given responses, in the shape `/v1/critique` returns."""

    winner: int | None
    ranking: tuple[int, ...]
    preference: tuple[float, ...]
    """Per response: its share of the valid votes (reason) or summed probability (fast)
    across its matches; 0.5 when it had none."""
    judgments: tuple[Judgment, ...]
    report: SelfCriticReport

    @property
    def usage(self) -> TokenUsage:
        return self.report.judge_usage

    def to_dict(self) -> dict[str, Any]:
        """The endpoint's `winner`, `ranking`, `preference`, `judgments`, the judge's
        `order_agreement` (over its matches: given responses differ in text) and `usage`."""
        return {
            "winner": self.winner,
            "ranking": list(self.ranking),
            "preference": [round(p, 6) for p in self.preference],
            "judgments": [j.to_dict() for j in self.judgments],
            "order_agreement": self.report.order_agreement.to_dict(),
            "usage": self.usage.to_dict(),
        }


async def rank_responses(engine: Engine, question: str | Sequence[Message],
                         responses: Sequence[str], config: SelfCriticConfig,
                         request_id: str) -> CritiqueResult:
    """Judge `responses` to `question`: one match for two, a knockout for more.

    `config.candidates` is ignored (the responses are the candidates). Raises ValueError
    for fewer than two or more than MAX_CANDIDATES responses.
    """
    if not 2 <= len(responses) <= MAX_CANDIDATES:
        raise ValueError(f"responses must hold from 2 to {MAX_CANDIDATES} items, "
                         f"got {len(responses)}")
    seed = draw_seed(config.seed)
    judge = PairJudge(engine, question, config, request_id=request_id, seed=seed)
    knockout = await play_rounds(Bracket.build(len(responses), seed), judge, list(responses))
    # The winner's last match is the final judged one; a coin there means a tie.
    final = next((m for m in reversed(knockout.matches) if knockout.winner in m.pair), None)
    tie = final is None or final.decided_by == "coin"
    return CritiqueResult(
        winner=None if tie else knockout.winner,
        ranking=knockout.ranking,
        preference=knockout.preference,
        judgments=knockout.judgments,
        report=SelfCriticReport(config, knockout, TokenUsage(),
                                images=len(images_of(question))),
    )
