"""A chat request's `self_critic` options, resolved against the server's defaults into the
`SelfCriticConfig` the knockout runs with, or a 400 naming the field at fault."""

from __future__ import annotations

from critic_loop.config import SelfCriticConfig
from server.chat.protocol import ChatCompletionRequest, SelfCriticOptions
from server.edge.errors import bad_request
from server.load.admission import check_comparisons
from server.serving.self_critic_config import BRACKET_FIELDS, JUDGE_FIELDS, server_config
from server.settings import ServerSettings


def self_critic_config(request: ChatCompletionRequest, alias: bool,
                       settings: ServerSettings) -> SelfCriticConfig | None:
    """The run's config, or None for plain sampling: the request's own `self_critic` (true,
    false or options) decides, else whether it named the self-critic `alias`."""
    options = request.self_critic
    if options is False or (options is None and not alias):
        return None
    if options is True or options is None:
        options = SelfCriticOptions()
    s = settings
    candidates = options.candidates or max(s.candidates, request.n)
    if not 1 <= candidates <= s.max_candidates:
        raise bad_request(f"self_critic.candidates must be between 1 and "
                          f"{s.max_candidates}, got {candidates}.",
                          param="self_critic.candidates")
    if request.n > candidates:
        raise bad_request(f"n ({request.n}) cannot exceed self_critic.candidates "
                          f"({candidates}): choices are the ranked candidates.", param="n")
    check_comparisons(options.comparisons, s.max_comparisons, "self_critic.comparisons")
    if options.adaptive != "off" and request.n > 1:
        raise bad_request("self_critic.adaptive ranks only the candidates it finished, so n "
                          f"must be 1, got {request.n}.", param="n")
    return server_config(
        settings, options.model_dump(include={*JUDGE_FIELDS, *BRACKET_FIELDS}),
        JUDGE_FIELDS + BRACKET_FIELDS, "self_critic",
        candidates=candidates, return_trace=options.return_trace, seed=request.seed,
        answer_format=options.answer_format, answer_pattern=options.answer_pattern,
        adaptive=options.adaptive, adaptive_wave=options.adaptive_wave)
