"""What runs the algorithm: engines, model files and the machine.

- `engines/`: the `Engine` implementations (vLLM's in-process `AsyncLLM` and its
  arguments, images, progress, compile cache and CPU settings; an upstream
  OpenAI-compatible server; the scripted engine the tests use);
- `model_store`, `gguf_source`: built-in model directories, converted from GGUF under a
  file lock;
- `dtype_policy`: the dtype a CPU computes natively (reads /proc/cpuinfo).

The rest of `critic_loop` is the algorithm and imports none of vLLM, torch or FastAPI;
tests/critic_loop/test_pure_core.py imports every one of its modules with those blocked.
"""
