"""Model-written Python: taking the program out of an answer, running it sandboxed, grading it.

Graders (eval policy, eval grade), the trainer's pair mining and the server's execution-based
grouping all run untrusted programs through one `Sandbox`, built once by the caller.
"""
