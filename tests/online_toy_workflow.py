"""Toy workflow for the online-mode tests: source -> worker -> writer, no physics.

The input is a text file holding the number of timeframes (``notruth`` in it: no truth for
``online_accuracy``). The worker sleeps ``ToyOnline.cost_ms`` per timeframe (static: slow,
adaptive: fast) and reports its level, exit fractions and what ``pc.timing`` showed it; the
writer writes one JSON document with per-timeframe correct/total counts to the output.

No ``from __future__ import annotations``: load_workflow does not put the module in
``sys.modules``, and a dataclass with string annotations needs it.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from alice_dyn.framework import DataProcessorSpec, InputSpec, OutputSpec, Task
from alice_dyn.framework.config import register_config_group, registered_groups
from alice_dyn.framework.online import NoTruthError


@dataclass(frozen=True)
class ToyOnlineParam:
    """cost_ms: sleep per timeframe, ms; correct_per_mille: correct items out of 1000."""

    cost_ms: float = 1.0
    correct_per_mille: int = 1000
    level: int = 0


# this file is loaded afresh by every load_workflow: register the group once per process
if "ToyOnline" not in registered_groups():
    register_config_group("ToyOnline", ToyOnlineParam)


def _read_input(path: str) -> tuple[int, bool]:
    text = Path(path).read_text()
    return int(text.split()[0]), "notruth" not in text


class ToySource(Task):
    def __init__(self, inputs: list[str]) -> None:
        self.inputs = inputs

    def init(self, ic) -> None:
        self.n, _ = _read_input(self.inputs[0])

    def run(self, pc) -> None:
        i = pc.timeslice
        pc.tf_id = 500 + i
        pc.outputs.snapshot("TOY/TF", {"tf_id": pc.tf_id})
        if i == self.n - 1:
            pc.end_of_stream()


class ToyWorker(Task):
    def run(self, pc) -> None:
        p = pc.config["ToyOnline"]
        time.sleep(p.cost_ms / 1e3)
        pc.report("level", p.level)
        pc.report("exit_fractions", [0.5, 0.3, 0.2] if p.level == 0 else [0.0, 0.0, 1.0])
        pc.report("backlog_seen", pc.timing.backlog)
        pc.report("time_left_ms", pc.timing.time_left_ms())
        pc.outputs.snapshot(
            "TOY/RESULT", {"tf_id": pc.tf_id, "correct": p.correct_per_mille, "total": 1000}
        )


class ToyWriter(Task):
    def __init__(self, output: str) -> None:
        self.output = output
        self.rows: list[dict] = []

    def run(self, pc) -> None:
        self.rows.append(dict(pc.inputs.get("result")))

    def end_of_stream(self, ec) -> None:
        Path(self.output).write_text(json.dumps(self.rows))


def define_workflow(inputs: list[str], output: str) -> list[DataProcessorSpec]:
    return [
        DataProcessorSpec(
            "toy-source", outputs=[OutputSpec("TOY", "TF")], algorithm=lambda: ToySource(inputs)
        ),
        DataProcessorSpec(
            "toy-worker",
            inputs=[InputSpec("tf", "TOY", "TF")],
            outputs=[OutputSpec("TOY", "RESULT")],
            algorithm=ToyWorker,
            config_groups=["ToyOnline"],
        ),
        DataProcessorSpec(
            "toy-writer",
            inputs=[InputSpec("result", "TOY", "RESULT")],
            algorithm=lambda: ToyWriter(output),
        ),
    ]


def online_modes() -> dict[str, str]:
    return {
        "static": "ToyOnline.cost_ms=30;ToyOnline.correct_per_mille=1000;ToyOnline.level=0",
        "adaptive": "ToyOnline.cost_ms=1;ToyOnline.correct_per_mille=996;ToyOnline.level=2",
    }


def online_accuracy(output: str, inputs: list[str]) -> dict[int, dict[str, tuple[int, int]]]:
    _, truth = _read_input(inputs[0])
    if not truth:
        raise NoTruthError(f"{inputs[0]} carries no truth")
    rows = json.loads(Path(output).read_text())
    return {
        r["tf_id"]: {"accuracy": (r["correct"], r["total"]), "purity": (r["total"], r["total"])}
        for r in rows
    }
