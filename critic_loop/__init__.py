"""Pure self-critic logic: judge prompts, verdicts, pairwise matches and the knockout.

Nothing here imports FastAPI or vLLM at import time; engines are reached through the
`Engine` protocol so the logic runs on a scripted engine in tests.
"""
