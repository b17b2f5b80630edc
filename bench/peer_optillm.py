"""Self-critic best-of-N against optillm, on the same model, engine, binding and questions.

Per built-in model, up to five servers on this machine, two of them vLLM engines: vLLM's own
OpenAI server with the engine settings and the thread binding ours uses (same dtype, 32-token
KV blocks, whole-prompt prefills, the same `VLLM_CPU_*` environment); optillm 0.4.0's proxy
(`--approach bon --best-of-n N`) in front of it once per N, the same proxies also answering
`optillm_approach: self_consistency`; and `selfcritic serve`. Questions: the shipped
arithmetic held-out set (`data/tasks/heldout.jsonl`, 1- and 2-digit alternating) and, with
`--humaneval K`, the first K HumanEval problems (a test set: graded only, nothing tuned; the
sandboxed `code` grader, `critic_loop.code`), interleaved with the arithmetic. One request
at a time, the arms interleaved per question in rotated order, so the machine's changing
load falls on every arm alike; `--budget-min` stops before a question once the run has used
its budget, so every arm answers the same questions.

Arms (`plan_arms`): optillm `bon@N` and `self_consistency@5` (its sample count is fixed at 5
in 0.4.0); ours in every selection strategy at each N (`knockout` fast with text and with
answer merging, `vote`, `confidence`, `hybrid`, and `vote` with adaptive sampling in
waves of N/2: agreement stopping, and agreement plus DeepConf online confidence stopping);
plain n=8 on our server (the cost of best-of-8 over its candidates); plain n=1 on ours and
on vLLM's server with the same seed (identical tokens: our serving overhead). optillm's
DeepConf (`decoding: deepconf`) runs only in its local
PyTorch inference mode (`OPTILLM_API_KEY=optillm`, the model loaded into the proxy by
transformers), never against a vLLM server, so it has no arm here.

Per arm: median / p90 latency, accuracy, pass@N (ours only, from the trace: optillm does not
return its candidates), tokens per question as each server reports them in `usage`
(optillm counts only its calls' completion tokens; ours candidates and judgments, with the
candidates' own tokens apart), and the per-question ratios that the targets compare, with
their spread (`bench/peer_report.py`).

    bash bench/setup_optillm.sh        # once: optillm into ~/.cache/selfcritic
    HF_HUB_OFFLINE=1 .venv/bin/python bench/peer_optillm.py --questions 6 --budget-min 20
    HF_HUB_OFFLINE=1 .venv/bin/python bench/peer_optillm.py --model qwen2.5-coder-0.5b-instruct \\
        --questions 3 --humaneval 2 --budget-min 20
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # bench/ is not a package: its folder is on sys.path
    OUR_CPU_ENGINE_ARGS,
    REPO,
    Server,
    free_port,
    http_client,
    launch,
    machine,
    post_json,
    publish,
    setup_logging,
    start_selfcritic,
    start_vllm,
)
from peer_report import markdown, summarise, targets

from critic_loop.answers import grade
from critic_loop.builtin_models import TEST_MODEL
from evaluation.code_tasks import HUMANEVAL
from evaluation.dataset import Question, load_questions

logger = logging.getLogger("bench.peer_optillm")

OPTILLM_HOME = Path(os.environ.get("OPTILLM_HOME",
                                   Path.home() / ".cache" / "selfcritic" / "optillm-0.4.0"))
SELF_CONSISTENCY_N = 5
"""optillm 0.4.0's self_consistency samples this many, whatever the request or server say."""
ARITHMETIC = REPO / "data" / "tasks" / "heldout.jsonl"
STRATEGY_ARMS: dict[str, dict[str, Any]] = {
    "knockout-fast": {"select": "knockout", "judge": "fast"},
    "knockout-fast-answer": {"select": "knockout", "judge": "fast", "merge": "answer"},
    "vote": {"select": "vote"},
    "confidence": {"select": "confidence"},
    "hybrid": {"select": "hybrid", "judge": "fast"},
    "vote-adaptive": {"select": "vote", "adaptive": "agreement"},  # waves of N/2, below
    "vote-adaptive-confidence": {"select": "vote", "adaptive": "confidence"},  # + DeepConf
}


@dataclass(frozen=True)
class Arm:
    """One way of answering: a server and what the request body adds."""

    name: str
    server: str
    n: int
    extra: dict[str, Any] = field(default_factory=dict)
    seeded: bool = False
    """The same seed on every server that answers this question (plain n=1 only)."""


def arithmetic_questions(count: int) -> list[Question]:
    """The first `count` arithmetic rows of the shipped held-out set, 1- and 2-digit taken in
    turn."""
    rows = load_questions(ARITHMETIC)
    by_kind = [[q for q in rows if q.category == c]
               for c in ("arithmetic-1digit", "arithmetic-2digit")]
    return [q for pair in zip(*by_kind, strict=False) for q in pair][:count]


def kind(question: Question) -> str:
    return "humaneval" if question.code else "arithmetic"


def interleave(first: list[Question], second: list[Question]) -> list[Question]:
    """first[0], second[0], first[1], ...: a budget cut leaves both kinds answered."""
    out = []
    for i in range(max(len(first), len(second))):
        out += first[i:i + 1] + second[i:i + 1]
    return out


def start_optillm(upstream: Server, n: int) -> Server:
    """optillm's proxy, best-of-n with `n` samples, in front of `upstream`."""
    if not (OPTILLM_HOME / "optillm").is_dir():
        raise SystemExit(f"optillm is not installed in {OPTILLM_HOME}: run "
                         "bash bench/setup_optillm.sh")
    port = free_port()
    argv = [sys.executable, "-c", "import sys; from optillm import main; sys.exit(main())",
            "--approach", "bon", "--best-of-n", str(n), "--base-url", upstream.url + "/v1",
            "--host", "127.0.0.1", "--port", str(port)]
    path = os.pathsep.join(p for p in (str(OPTILLM_HOME), os.environ.get("PYTHONPATH")) if p)
    # optillm picks its OpenAI client by which API key variable is set; the key is unused
    env = {"PYTHONPATH": path, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "unused")}
    return launch(f"optillm-bon{n}", argv, upstream.model, port, env=env)


def plan_arms(ns: Sequence[int], strategies: Sequence[str], plain_ns: Sequence[int]
              ) -> list[Arm]:
    arms = [Arm("plain-ours@1", "selfcritic", 1, seeded=True),
            Arm("plain-vllm@1", "vllm", 1, seeded=True)]
    arms += [Arm(f"plain@{n}", "selfcritic", n, {"n": n}) for n in plain_ns]
    arms += [Arm(f"optillm-bon@{n}", f"optillm-bon{n}", n) for n in ns]
    arms.append(Arm(f"optillm-sc@{SELF_CONSISTENCY_N}", f"optillm-bon{ns[0]}",
                    SELF_CONSISTENCY_N, {"optillm_approach": "self_consistency"}))
    for name in strategies:
        for n in ns:
            options = {"candidates": n, **STRATEGY_ARMS[name], "return_trace": True}
            if options.get("adaptive"):
                options["adaptive_wave"] = max(1, n // 2)
            arms.append(Arm(f"{name}@{n}", "selfcritic", n, {"self_critic": options}))
    return arms


def request_body(arm: Arm, model: str, question: Question, max_tokens: int,
                 system_prompt: str, seed: int) -> dict[str, Any]:
    """The same request for every arm. optillm samples its candidates at temperature 1
    whatever the request says, with the client's system prompt (empty when there is none)
    as an explicit system message, without a seed and with vLLM's top_p of 1; ours get
    exactly that too, so all sample from the same prompt the same way."""
    messages = [{"role": "system", "content": system_prompt},
                {"role": "user", "content": question.question}]
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "temperature": 1.0,
                            "top_p": 1.0, "messages": messages}
    if arm.seeded:
        body["seed"] = seed
    return {**body, **arm.extra}


class Grader:
    """Grades answers: numerically, or by running a code problem's tests in the sandbox
    (each distinct program once)."""

    def __init__(self, code: bool) -> None:
        self._code = None
        self._seen: dict[tuple[str, str], bool] = {}
        if code:
            from critic_loop.code.grader import CodeGrader
            from critic_loop.code.sandbox import Limits, Sandbox

            self._code = CodeGrader(Sandbox(Limits(wall_s=10, cpu_s=10), max_parallel=2))

    def __call__(self, text: str, question: Question) -> bool:
        if question.code is None:
            return grade(text, question.answer, question.grader)
        key = (question.id, text)
        if key not in self._seen:
            assert self._code is not None
            self._seen[key] = self._code.grade(text, question.code).passed
        return self._seen[key]

    def close(self) -> None:
        if self._code is not None:
            self._code.close()


def score(grader: Grader, question: Question, body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices") or [{}]
    text = (choices[0].get("message") or {}).get("content") or ""
    usage = body.get("usage") or {}
    row: dict[str, Any] = {"correct": grader(text, question),
                           "completion_tokens": int(usage.get("completion_tokens") or 0),
                           "prompt_tokens": int(usage.get("prompt_tokens") or 0)}
    if len(choices) > 1:  # plain n=N: any sample right
        texts = [(c.get("message") or {}).get("content") or "" for c in choices]
        row["pass"] = any(grader(t, question) for t in texts)
    report = body.get("self_critic") or {}
    trace = report.get("trace") or {}
    candidates = [c.get("text") or "" for c in trace.get("candidates") or []]
    if candidates:
        row["pass"] = any(grader(c, question) for c in candidates)
    if report:
        row["candidate_tokens"] = int(((report.get("usage") or {}).get("candidate") or {})
                                      .get("completion_tokens") or 0)
        adaptive = report.get("adaptive") or {}
        if adaptive:
            row["started"] = adaptive.get("started")
            row["stopped"] = adaptive.get("stopped")
    elif "self_critic" not in body:
        row["candidate_tokens"] = row["completion_tokens"]  # plain: its tokens are its own
    return row


async def run(args: argparse.Namespace, servers: dict[str, Server], arms: list[Arm],
              questions: list[Question], grader: Grader,
              checkpoint: Callable[[dict[str, list[dict[str, Any]]]], object]
              ) -> dict[str, list[dict[str, Any]]]:
    """Every question through every arm; `checkpoint(rows)` after each question, so a run
    stopped early still leaves its figures."""
    rows: dict[str, list[dict[str, Any]]] = {arm.name: [] for arm in arms}
    clients = {name: http_client(server) for name, server in servers.items()}
    started = time.monotonic()
    try:
        for q, question in enumerate(questions):
            used_min = (time.monotonic() - started) / 60
            if q and used_min >= args.budget_min:
                logger.info("budget of %.0f min used (%.1f): stopping after %d questions",
                            args.budget_min, used_min, q)
                break
            order = arms[q % len(arms):] + arms[:q % len(arms)]
            max_tokens = args.code_max_tokens if question.code else args.max_tokens
            for arm in order:
                server = servers[arm.server]
                body = request_body(arm, server.model, question, max_tokens,
                                    args.system_prompt, seed=1000 + q)
                outcome = await post_json(clients[arm.server], "/v1/chat/completions", body)
                row: dict[str, Any] = {"question": question.id, "kind": kind(question),
                                       "status": outcome.status,
                                       "seconds": round(outcome.latency, 3),
                                       "load1": round(os.getloadavg()[0], 2)}
                if outcome.status == 200:
                    row.update(await asyncio.to_thread(score, grader, question,
                                                       outcome.extra["body"]))
                else:
                    row["error"] = outcome.error
                rows[arm.name].append(row)
                logger.info("q%d %s %s: %s in %.1f s (%s)", q, kind(question), arm.name,
                            outcome.status, outcome.latency,
                            "right" if row.get("correct") else "wrong")
            checkpoint(rows)
    finally:
        for client in clients.values():
            await client.aclose()
    return rows


def same_binding_env() -> dict[str, str]:
    """The thread-binding variables our engine starts with (`critic_loop.runtime.engines.
    cpu_runtime`: the operator's, else its own choice), for vLLM's server too."""
    from critic_loop.runtime.engines.cpu_runtime import BINDING_VARIABLES, choose_binding

    cpus = sorted(os.sched_getaffinity(0))
    chosen = dict(choose_binding(cpus, os.environ).environ)
    chosen.update({k: os.environ[k] for k in BINDING_VARIABLES if k in os.environ})
    return chosen


def start_servers(args: argparse.Namespace, code: bool) -> dict[str, Server]:
    from critic_loop.runtime.dtype_policy import resolve_dtype
    from critic_loop.runtime.model_store import resolve_model

    model = resolve_model(args.model)
    eager = not args.compiled
    dtype = resolve_dtype("auto", model.path, on_cpu=True).dtype
    binding = same_binding_env()
    os.environ.update(binding)  # both servers inherit it
    logger.info("both engines: dtype %s, binding %s", dtype, binding or "vLLM's automatic")
    servers: dict[str, Server] = {}
    try:
        # One at a time, so no start competes with another for the CPU.
        extra = ["--max-candidates", str(max(16, *args.ns))]
        if code:
            extra.append("--exec-grouping")  # ours groups code candidates by behaviour
        servers["selfcritic"] = start_selfcritic(eager, extra=extra, model_name=args.model)
        servers["vllm"] = start_vllm(str(model.path), model.served_name, eager,
                                     extra=[*OUR_CPU_ENGINE_ARGS, "--dtype", dtype])
        for n in args.ns:
            servers[f"optillm-bon{n}"] = start_optillm(servers["vllm"], n)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    args.dtype, args.binding = dtype, binding
    return servers


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", default=TEST_MODEL, help="A built-in model.")
    parser.add_argument("--questions", type=int, default=6,
                        help="Arithmetic held-out questions (at most 30).")
    parser.add_argument("--humaneval", type=int, default=0,
                        help="HumanEval problems (the first K), interleaved.")
    parser.add_argument("--budget-min", type=float, default=30,
                        help="Start no further question once this many minutes are used.")
    parser.add_argument("--ns", type=int, nargs="+", default=[4, 8, 16], help="Candidates N.")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGY_ARMS),
                        choices=list(STRATEGY_ARMS), help="Our arms, each at every N.")
    parser.add_argument("--plain-ns", type=int, nargs="*", default=[8],
                        help="Plain n=N on our server (best-of-N's candidates alone).")
    parser.add_argument("--max-tokens", type=int, default=256, help="Arithmetic max_tokens.")
    parser.add_argument("--code-max-tokens", type=int, default=384,
                        help="HumanEval max_tokens.")
    parser.add_argument("--system-prompt", default="",
                        help="System message of every request (optillm always sends one).")
    parser.add_argument("--compiled", action="store_true",
                        help="Both engines with graph compilation (default: both eager).")
    parser.add_argument("--name", default=None,
                        help="Results file stem (default: peer_optillm_<model>).")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    name = args.name or f"peer_optillm_{args.model.split('-instruct')[0].replace('.', '')}"
    questions = interleave(arithmetic_questions(args.questions),
                           load_questions(HUMANEVAL, limit=args.humaneval) if args.humaneval else [])
    arms = plan_arms(args.ns, args.strategies, args.plain_ns)
    start_machine = machine()
    grader = Grader(code=args.humaneval > 0)
    servers = start_servers(args, code=args.humaneval > 0)

    def write(rows: dict[str, list[dict[str, Any]]]) -> int:
        summary = summarise(rows)
        payload = {"benchmark": "peer_optillm", "machine": start_machine,
                   "machine_at_end": machine(),
                   "settings": {**{k: v for k, v in vars(args).items() if k != "verbose"},
                                "eager": not args.compiled,
                                "answered": max(len(r) for r in rows.values())},
                   "summary": summary, "targets": targets(rows, args.ns), "rows": rows}
        return publish(name, payload, markdown(payload))

    try:
        rows = asyncio.run(run(args, servers, arms, questions, grader, write))
    finally:
        for server in servers.values():
            server.stop()
        grader.close()
    return write(rows)


if __name__ == "__main__":
    raise SystemExit(main())
