"""Measuring answers: verifiable question sets and `selfcritic eval policy`.

`tasks` generates small seeded question sets with held-out splits, `dataset` loads
question/answer JSONL files, `client` talks to any OpenAI-compatible endpoint,
`strategies` runs greedy / sampling / majority / pass@N / self-critic on each question,
and `report` turns the outcomes into accuracies with confidence intervals, a table,
JSON and a plot. Depends on `critic_loop` only (its answer extractor and graders).
"""
