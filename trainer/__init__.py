"""GRPO critic training: preference pairs in, servable checkpoints out.

`data` turns preference pairs into judge prompts built by `critic_loop`, `rewards` scores
judge outputs, `train` runs TRL's `GRPOTrainer` from a YAML `recipe`, `export` writes a
directory `selfcritic serve --model DIR` serves unchanged, and `evaluate` measures a judge.
"""
