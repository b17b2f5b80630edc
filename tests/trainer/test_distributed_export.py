"""Training as two processes (torchrun, gloo on the CPU): every process trains and gathers,
exactly one writes the export, and the export loads.

~20 s on 2 cores (40 s when they are busy), nearly all of it two processes importing
torch, transformers and TRL (which imports vLLM): the training is one step of a tiny model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from trainer.export import METADATA_FILE, judge_metadata

REPO = Path(__file__).resolve().parents[2]

LAUNCHER = '''\
"""`selfcritic train` with every call of export_model recorded as the caller's rank."""
import os
import sys
from pathlib import Path

import trainer.train

calls, real = Path(sys.argv[1]), trainer.train.export_model


def recorded(*args, **kwargs):
    with calls.open("a") as f:
        f.write(os.environ["RANK"] + "\\n")
    return real(*args, **kwargs)


trainer.train.export_model = recorded
from selfcritic.cli import main

raise SystemExit(main(["train", *sys.argv[2:]]))
'''


def test_two_processes_export_once_and_the_export_loads(tiny_model_dir: Path,
                                                        tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    launcher, calls, out = tmp_path / "launch.py", tmp_path / "export-calls", tmp_path / "run"
    launcher.write_text(LAUNCHER)
    overrides = [f"model={tiny_model_dir}", f"output_dir={out}", "max_steps=1",
                 "num_generations=2", "per_device_train_batch_size=2", "max_train_pairs=4",
                 "save_steps=1", "cpu_threads=1", "max_minutes=null"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(launcher), str(calls),
               str(REPO / "recipes" / "cpu-demo-fast.yaml"),
               *[arg for o in overrides for arg in ("--set", o)]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "PASSIVE"}
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]

    assert calls.read_text().split() == ["0"]  # one writer: the main process
    assert log.count("Exporting on process 0 of 2") == 1  # and it saw both processes
    final = (out / "final").resolve()
    assert run.stdout.split() == [str(final)] * 2  # each process returned after the export
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no staging

    meta = json.loads((final / METADATA_FILE).read_text())
    assert meta["judge"] == judge_metadata("fast") and meta["steps"] == 1
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.dtype == torch.bfloat16
    assert AutoTokenizer.from_pretrained(final).chat_template
    # the export holds the trained weights: those of the step's checkpoint, in bf16
    saved = load_file(out / "checkpoint-1" / "model.safetensors")
    exported = model.state_dict()
    for name, value in saved.items():
        torch.testing.assert_close(exported[name], value.to(torch.bfloat16))
