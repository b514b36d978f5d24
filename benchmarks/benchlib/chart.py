# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw results.png from results.json: one bar per comparison, the ratio ours / theirs on a log scale.

Run with the benchmark venv's Python (matplotlib is installed there):
``python chart.py results.json results.png``.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

FLOOR = 0.01  # a ratio of 0 (no leases, no revisions) is drawn here and labelled "0"


def main(src, dest):
    with open(src, encoding="utf-8") as handle:
        doc = json.load(handle)
    rows = [r for r in doc["comparisons"] if r["ratio"] is not None]
    if not rows:
        rows = []
    labels, values, colours, texts = [], [], [], []
    for row in reversed(rows):
        unit = " [%s]" % row["unit"] if row["unit"] else ""
        labels.append("%s: %s%s\n%s vs %s"
                      % (row["case_title"], row["metric_label"], unit, row["ours_label"], row["theirs_label"]))
        ratio = row["ratio"]
        values.append(max(ratio, FLOOR))
        colours.append("#2e7d32" if ratio <= 1.0 else "#c62828")
        texts.append("0" if ratio == 0 else ("%.2f" % ratio if ratio < 10 else "%.0f" % ratio))
    height = max(3.0, 0.42 * len(rows) + 1.5)
    fig, axis = plt.subplots(figsize=(11, height))
    bars = axis.barh(range(len(values)), values, color=colours)
    axis.set_yticks(range(len(values)))
    axis.set_yticklabels(labels, fontsize=7)
    axis.set_xscale("log")
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_xlabel("ratio ours / theirs (median; log scale; left of 1 = ours faster or doing less)")
    for rect, text in zip(bars, texts):
        axis.text(rect.get_width() * 1.08, rect.get_y() + rect.get_height() / 2, text, va="center", fontsize=7)
    met = sum(1 for t in doc["targets"] if t["met"] is True)
    missed = sum(1 for t in doc["targets"] if t["met"] is False)
    axis.set_title("datastore.kubernetes vs alternatives - targets met %d, missed %d, not measured %d"
                   % (met, missed, len(doc["targets"]) - met - missed), fontsize=10)
    if values:
        axis.set_xlim(FLOOR / 1.5, max(values + [1.0]) * 3)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
