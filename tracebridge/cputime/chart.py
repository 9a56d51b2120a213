"""The comparison chart: busiest threads side by side, and the total over time.

Left, a horizontal grouped bar chart of each run's mean CPU for the busiest
thread names (horizontal, because kernel thread names such as
``intr{irq264: igb0:rxq0}`` are long and must stay readable).  Right, each
run's total CPU over time, so a mean hiding a ramp or a stall is seen.
matplotlib is imported here only, with the Agg backend: no display needed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from tracebridge.cputime.compare import Run, display_name
from tracebridge.cputime.stats import total_over_time
from tracebridge.support.errors import UsageError
from tracebridge.support.outputs import open_output

CHART_FORMATS = ("png", "svg", "pdf")


def chart_format(path: str) -> str:
    """The image format from the file name; checked before any work is done."""
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in CHART_FORMATS:
        raise UsageError(f"{path}: the chart must end in {', '.join('.' + f for f in CHART_FORMATS)}")
    return extension


def draw_comparison(runs: Sequence[Run], keys: Sequence[tuple[str, str]], path: str) -> None:
    fmt = chart_format(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = max(4.5, 0.42 * len(keys) * max(1, len(runs) / 2) + 2.0)
    figure, (bars, lines) = plt.subplots(1, 2, figsize=(15, height), layout="constrained",
                                         gridspec_kw={"width_ratios": (1.15, 1.0)})
    _draw_bars(bars, runs, keys)
    _draw_totals(lines, runs)
    figure.suptitle("CPU usage: " + " vs ".join(run.label for run in runs), fontsize=14)
    with open_output(path, "wb", inputs=[run.path for run in runs]) as out, warnings.catch_warnings():
        # Matplotlib warns on standard error about glyphs its font lacks (a thread named in
        # a script DejaVu does not cover) and cramped layouts; the chart is drawn either way.
        warnings.simplefilter("ignore", UserWarning)
        figure.savefig(out, format=fmt, dpi=100)
    plt.close(figure)


def _draw_bars(axes, runs: Sequence[Run], keys: Sequence[tuple[str, str]]) -> None:
    slot = 0.8 / len(runs)
    for index, run in enumerate(runs):
        means = [float(run.stats["mean"].get(key, 0.0)) for key in keys]
        positions = [k + (index - (len(runs) - 1) / 2) * slot for k in range(len(keys))]
        drawn = axes.barh(positions, means, height=slot, label=run.label)
        # No number where the run lacks the name: an absent thread is not a measured 0.
        axes.bar_label(drawn, labels=[f"{mean:.1f}" if key in run.stats.index else ""
                                      for key, mean in zip(keys, means, strict=True)], padding=2, fontsize=8)
    axes.set_yticks(range(len(keys)), labels=[_label(display_name(key)) for key in keys])
    axes.invert_yaxis()  # busiest at the top
    axes.set_xlabel("mean CPU over the run (% of one CPU)")
    axes.set_title(f"Busiest {len(keys)} threads")
    axes.margins(x=0.12)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="lower right")


#: Longest thread label drawn (a top -a command line can be hundreds of characters).
LABEL_MAX = 48


def _label(text: str) -> str:
    return text if len(text) <= LABEL_MAX else text[:LABEL_MAX - 1] + "…"


def _draw_totals(axes, runs: Sequence[Run]) -> None:
    whole_machine = True
    for run in runs:
        total, machine = total_over_time(run.frame)
        whole_machine &= machine
        axes.plot(total.index, total.values, marker="." if len(total) < 60 else None, label=run.label)
    axes.set_title("Whole machine over time" if whole_machine else "Sum of all threads over time")
    axes.set_xlabel("time since start (s)")
    axes.set_ylabel("CPU (% of one CPU)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="best")

