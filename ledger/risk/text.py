"""The short text a risk committee can paste into its minutes, from a risk report."""

from __future__ import annotations

from typing import Any


def _move(text: str | None, sign: str, limit: str) -> str:
    if text is None:
        return f"none up to {sign}{limit}"
    return f"{sign}{float(text) * 100:.4g}%"


def committee_text(doc: dict[str, Any]) -> str:
    """A dozen lines: the fund, the recommendation, the tail figures per policy."""
    asset = doc["asset"]
    scen = ", ".join(f"{name} ({row['paths']})" for name, row in doc["scenarios"].items())
    coverage = "n/a" if doc["coverage"] is None else f"{float(doc['coverage']) * 100:.1f}%"
    d = doc["deficits"]
    lines = [
        (f"Insurance fund sizing, fund {doc.get('fund', '?')} ({asset}), model "
        f"{doc['model']['hash'][:12]}"),
        (f"  Book: {doc['positions']} open positions in "
        f"{', '.join(f'{m} at {p}' for m, p in doc['markets'].items())}; "
        f"{doc['paths']} paths: {scen}."),
        (f"  Fund today: {doc['balance']} {asset}. Recommended size: {doc['recommended_size']} "
        f"{asset} = max(ES 99.9% of deficits {d['99.9']['es']}, cover-2 {doc['cover_2']}) x "
        f"(1 + {doc['model']['parameters']['buffer']}). Coverage today: {coverage}."),
        (f"  Deficits: VaR99 {d['99.0']['var']}, ES99 {d['99.0']['es']}, "
        f"VaR99.9 {d['99.9']['var']}, ES99.9 {d['99.9']['es']}. Cover-1 {doc['cover_1']}, "
        f"cover-2 {doc['cover_2']} (largest one and two accounts or affiliate groups)."),
    ]
    for p in doc["policies"]:
        dd, so = p["drawdown"], p["socialized"]
        rs = p["reverse_stress"]
        lines.append(
            f"  Policy {p['name']}: P(socialization) {float(p['probability_of_socialization']):.2%}"
            f", expected socialized {p['expected_socialized']}, mean liquidation fees in "
            f"{p['fees_mean']}; fund drawdown ES99 "
            f"{dd['99.0']['es']}, ES99.9 {dd['99.9']['es']}; socialized ES99.9 "
            f"{so['99.9']['es']}; reverse stress: an instant move exhausts the fund at "
            f"{_move(rs['down'], '-', '100%')} / {_move(rs['up'], '+', '900%')}.")
        if p.get("reverse_stress_paths"):
            along = ", ".join(f"{name} x{float(k):.4g}" if k is not None else f"{name} none "
                              "up to x10" for name, k in p["reverse_stress_paths"].items())
            lines.append(f"    Reverse stress along the stress paths (the smallest scaling "
                         f"of the path's log move that exhausts the fund): {along}.")
    names = [p["name"] for p in doc["policies"]]
    for name, row in doc["scenarios"].items():
        if name == "stochastic":
            continue
        social = ", ".join(f"{row['worst_socialized'][n]} under {n}" for n in names)
        worst = "" if row["paths"] == 1 else f" (worst of {row['paths']} paths)"
        lines.append(f"  Scenario {name}{worst}: deficits {row['worst_deficits']}, socialized "
                     f"{social}.")
    lines += _uncertainty_lines(doc)
    return "\n".join(lines)


def _uncertainty_lines(doc: dict[str, Any]) -> list[str]:
    """The intervals, the path-count warnings and the sensitivity table, when present."""
    lines = []
    u = doc.get("uncertainty") or {}
    if "deficits" in u:
        d = u["deficits"]
        social = ", ".join(f"{n} [{float(lo):.2%}, {float(hi):.2%}]" for n, (lo, hi) in
                           u["probability_of_socialization"].items())
        lines.append(
            f"  {float(u['confidence']) * 100:g}% intervals (bootstrap over the paths, "
            f"{u['resamples']} resamples, seed {u['seed']}): ES99.9 [{d['99.9']['es'][0]}, "
            f"{d['99.9']['es'][1]}], VaR99.9 [{d['99.9']['var'][0]}, {d['99.9']['var'][1]}], "
            f"ES99 [{d['99.0']['es'][0]}, {d['99.0']['es'][1]}], recommended size "
            f"[{u['recommended_size'][0]}, {u['recommended_size'][1]}]; P(socialization) "
            f"{social}.")
    lines += [f"  WARNING: {w}." for w in doc.get("warnings", [])]
    rows = doc.get("sensitivity")
    if rows:
        lines.append("  Sensitivity (same seed; one input scaled): input x factor (value): "
                     "ES99.9 of deficits, recommended size, P(socialization)")
        first = doc["policies"][0]["probability_of_socialization"]
        lines.append(f"    base: {doc['deficits']['99.9']['es']}, {doc['recommended_size']}, "
                     f"{float(first):.2%}")
        for row in rows:
            value = row["value"]
            shown = value if value.startswith("x") else f"{float(value):.4g}"
            head = f"    {row['input']} x {row['factor']} ({shown}): "
            if "skipped" in row:
                lines.append(head + f"skipped ({row['skipped']})")
            else:
                lines.append(head + f"{row['es_999_deficits']}, {row['recommended_size']}, "
                             f"{float(row['probability_of_socialization']):.2%}")
    return lines
