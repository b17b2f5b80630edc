"""Killed training resumes: SIGKILL a run after its first checkpoint, rerun the same
command, and it finishes at the same step count from that checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.export import METADATA_FILE
from trainer.train import last_complete_checkpoint

REPO = Path(__file__).resolve().parents[2]
MAX_STEPS = 4


def train_command(model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "selfcritic", "train", "recipes/cpu-demo.yaml",
            "--set", f"model={model}", "--set", f"output_dir={out}",
            "--set", f"max_steps={MAX_STEPS}", "--set", "save_steps=1",
            "--set", "save_total_limit=null", "--set", "max_completion_length=8",
            "--set", "max_train_pairs=16", "--set", "cpu_threads=1"]


@pytest.mark.integration
def test_sigkill_after_a_checkpoint_then_resume(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(train_command(tiny_model_dir, out), cwd=REPO, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while last_complete_checkpoint(out) is None:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    killed_at = last_complete_checkpoint(out)
    assert killed_at is not None and not (out / "final").exists()
    steps_done = int(killed_at.name.split("-")[1])
    assert steps_done < MAX_STEPS, "the run finished before it could be killed"

    second = subprocess.run(train_command(tiny_model_dir, out), cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Resuming from {out}/checkpoint-" in second.stderr
    meta = json.loads((out / "final" / METADATA_FILE).read_text())
    assert meta["steps"] == MAX_STEPS
    assert int(Path(meta["resumed_from"]).name.split("-")[1]) >= steps_done
    state = json.loads((out / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS
    assert second.stdout.strip() == str((out / "final").resolve())
