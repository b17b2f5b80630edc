"""`self_critic` fields that pin the knockout for tests of the bracket itself: the server's
default selection is a vote over a pool holding the greedy decode (or the model's
calibration), so a test of rounds, matches or judge calls names the knockout."""

KNOCKOUT = {"select": "knockout", "include_greedy": False}
