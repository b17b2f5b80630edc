"""Pure self-critic logic: judge prompts, verdicts, pairwise matches and the knockout.

The algorithm reaches engines only through the `Engine` protocol (`critic_loop.engine`),
so it runs on a scripted engine in tests. Everything that needs an engine, model files
or the machine lives in `critic_loop.runtime`; no module outside it imports vLLM, torch
or FastAPI, which tests/critic_loop/test_pure_core.py checks by importing each of them
with those blocked. (`code/sandbox.py`, which runs graded programs, needs only the
standard library and stays beside the grader it serves.)
"""
