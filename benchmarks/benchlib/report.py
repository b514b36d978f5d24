# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the benchmark report: samples, medians, ratios, targets, tables.

Nothing here talks to a server or starts a process, so it is unit tested
(tests/unit/test_bench_report.py) and shared by the runner and the chart.
"""

from __future__ import annotations

import math

OPS = {
    "<=": lambda value, limit: value <= limit,
    "<": lambda value, limit: value < limit,
    "==": lambda value, limit: value == limit,
    ">=": lambda value, limit: value >= limit,
}


def median(values):
    """Median of the numbers in ``values`` (``None`` entries ignored); ``None`` when there are none."""
    data = sorted(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))
    if not data:
        return None
    mid = len(data) // 2
    if len(data) % 2:
        return data[mid]
    return (data[mid - 1] + data[mid]) / 2.0


def ratio(ours, theirs):
    """``ours / theirs``; ``None`` when either is missing, or ``theirs`` is zero while ``ours`` is not."""
    if ours is None or theirs is None:
        return None
    if theirs == 0:
        return 1.0 if ours == 0 else None
    return ours / theirs


def check(value, op, limit):
    """Whether ``value op limit`` holds; ``None`` (unknown) when the value is missing."""
    if value is None:
        return None
    return bool(OPS[op](value, limit))


def rotated(items, index):
    """``items`` rotated left by ``index``: run ``i`` of a case starts with a different contender."""
    if not items:
        return []
    shift = index % len(items)
    return list(items[shift:]) + list(items[:shift])


class Results:
    """Samples per case, metric and contender, plus the notes a run wants in the report."""

    def __init__(self):
        self.cases = {}
        self.case_order = []

    def case(self, case_id, title, description=""):
        if case_id not in self.cases:
            self.cases[case_id] = {"title": title, "description": description, "metrics": {},
                                   "metric_order": [], "notes": [], "skipped": None, "contenders": {}}
            self.case_order.append(case_id)
        return self.cases[case_id]

    def metric(self, case_id, metric_id, label, unit, lower_is_better=True):
        case = self.cases[case_id]
        if metric_id not in case["metrics"]:
            case["metrics"][metric_id] = {"label": label, "unit": unit, "lower_is_better": lower_is_better,
                                          "samples": {}}
            case["metric_order"].append(metric_id)
        return case["metrics"][metric_id]

    def contender(self, case_id, name, label, ours):
        self.cases[case_id]["contenders"][name] = {"label": label, "ours": bool(ours)}

    def add(self, case_id, metric_id, contender, value):
        samples = self.cases[case_id]["metrics"][metric_id]["samples"]
        samples.setdefault(contender, []).append(value)

    def note(self, case_id, text):
        self.cases[case_id]["notes"].append(text)

    def skip(self, case_id, reason):
        self.cases[case_id]["skipped"] = reason

    def median_of(self, case_id, metric_id, contender):
        try:
            samples = self.cases[case_id]["metrics"][metric_id]["samples"][contender]
        except KeyError:
            return None
        return median(samples)

    @classmethod
    def from_dict(cls, doc):
        """Rebuild from ``to_dict()`` output (results.json's ``cases``), to redraw a report."""
        res = cls()
        for case_id, case in doc.items():
            res.case(case_id, case["title"], case.get("description", ""))
            res.cases[case_id]["contenders"] = dict(case.get("contenders") or {})
            res.cases[case_id]["notes"] = list(case.get("notes") or [])
            res.cases[case_id]["skipped"] = case.get("skipped")
            for metric_id, metric in (case.get("metrics") or {}).items():
                res.metric(case_id, metric_id, metric["label"], metric["unit"], metric.get("lower_is_better", True))
                for name, data in metric["contenders"].items():
                    for value in data["samples"]:
                        res.add(case_id, metric_id, name, value)
        return res

    def to_dict(self):
        out = {}
        for case_id in self.case_order:
            case = self.cases[case_id]
            metrics = {}
            for metric_id in case["metric_order"]:
                metric = case["metrics"][metric_id]
                metrics[metric_id] = {
                    "label": metric["label"],
                    "unit": metric["unit"],
                    "lower_is_better": metric["lower_is_better"],
                    "contenders": {name: {"samples": samples, "median": median(samples)}
                                   for name, samples in metric["samples"].items()},
                }
            out[case_id] = {"title": case["title"], "description": case["description"],
                            "contenders": case["contenders"], "metrics": metrics, "notes": case["notes"],
                            "skipped": case["skipped"]}
        return out


class Comparison:
    """One row of the table: a metric of one of our contenders against one of theirs."""

    def __init__(self, case_id, metric_id, ours, theirs):
        self.case_id = case_id
        self.metric_id = metric_id
        self.ours = ours
        self.theirs = theirs

    def evaluate(self, results):
        ours = results.median_of(self.case_id, self.metric_id, self.ours)
        theirs = results.median_of(self.case_id, self.metric_id, self.theirs)
        case = results.cases.get(self.case_id) or {}
        metric = (case.get("metrics") or {}).get(self.metric_id) or {}
        contenders = case.get("contenders") or {}
        return {
            "case": self.case_id,
            "case_title": case.get("title", self.case_id),
            "metric": self.metric_id,
            "metric_label": metric.get("label", self.metric_id),
            "unit": metric.get("unit", ""),
            "ours": self.ours,
            "ours_label": (contenders.get(self.ours) or {}).get("label", self.ours),
            "theirs": self.theirs,
            "theirs_label": (contenders.get(self.theirs) or {}).get("label", self.theirs),
            "ours_median": ours,
            "theirs_median": theirs,
            "ratio": ratio(ours, theirs),
        }


class Target:
    """A goal: a ratio of a comparison, or the median of one contender's metric, against a limit."""

    def __init__(self, target_id, description, op, limit, comparison=None, case_id=None, metric_id=None,
                 contender=None, unit=""):
        self.target_id = target_id
        self.description = description
        self.op = op
        self.limit = limit
        self.comparison = comparison
        self.case_id = case_id
        self.metric_id = metric_id
        self.contender = contender
        self.unit = unit

    def evaluate(self, results):
        if self.comparison is not None:
            row = self.comparison.evaluate(results)
            value, kind = row["ratio"], "ratio"
            case_id = self.comparison.case_id
        else:
            value, kind = results.median_of(self.case_id, self.metric_id, self.contender), "value"
            case_id = self.case_id
        case = results.cases.get(case_id) or {}
        met = check(value, self.op, self.limit)
        out = {"id": self.target_id, "description": self.description, "kind": kind, "value": value,
               "op": self.op, "limit": self.limit, "unit": self.unit, "met": met}
        if met is None:
            out["note"] = ("case skipped: %s" % case["skipped"]) if case.get("skipped") else "not measured"
        return out


def fmt(value, unit=""):
    """A number for a table: ``n/a`` when missing, few significant digits otherwise."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 10):
        text = "%d" % value
    elif abs(value) >= 100:
        text = "%.0f" % value
    elif abs(value) >= 10:
        text = "%.1f" % value
    elif abs(value) >= 1:
        text = "%.2f" % value
    else:
        text = "%.3f" % value
    return "%s %s" % (text, unit) if unit else text


def verdict(met):
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def markdown(comparisons, targets, results, meta):
    """The results as Markdown: targets first, then every comparison, then the notes."""
    lines = ["# Benchmark results", ""]
    lines.append("Medians of %s runs per case (fewer where noted), contenders alternating; ratio = ours / theirs, "
                 "below 1 means ours is faster or does less." % meta.get("runs", "?"))
    lines.append("")
    lines.append("Environment: %s" % meta.get("environment", ""))
    lines.append("")
    lines.append("## Targets")
    lines.append("")
    lines.append("| target | measured | limit | result |")
    lines.append("|---|---|---|---|")
    for tgt in targets:
        measured = fmt(tgt["value"], tgt["unit"] if tgt["kind"] == "value" else "")
        result = verdict(tgt["met"])
        if tgt.get("note") and tgt["note"] != result:
            result += " (%s)" % tgt["note"]
        limit = "%g" % tgt["limit"]
        if tgt["kind"] == "value" and tgt["unit"]:
            limit += " " + tgt["unit"]
        lines.append("| %s | %s | %s %s | %s |" % (tgt["description"], measured, tgt["op"], limit, result))
    lines.append("")
    lines.append("## Comparisons")
    lines.append("")
    lines.append("| case | metric | ours | median | theirs | median | ratio |")
    lines.append("|---|---|---|---|---|---|---|")
    for row in comparisons:
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            row["case_title"], row["metric_label"], row["ours_label"], fmt(row["ours_median"], row["unit"]),
            row["theirs_label"], fmt(row["theirs_median"], row["unit"]), fmt(row["ratio"])))
    lines.append("")
    notes = [(results.cases[c]["title"], results.cases[c]) for c in results.case_order]
    if any(case["notes"] or case["skipped"] for _title, case in notes):
        lines.append("## Notes")
        lines.append("")
        for title, case in notes:
            if case["skipped"]:
                lines.append("- **%s** skipped: %s" % (title, case["skipped"]))
            for text in case["notes"]:
                lines.append("- **%s**: %s" % (title, text))
        lines.append("")
    return "\n".join(lines)
