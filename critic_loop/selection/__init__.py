"""Choosing the winner among sampled candidates: one module per strategy, a name → strategy
registry (`critic_loop.selection.registry`), and the confidence signals they read."""
