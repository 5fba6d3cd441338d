"""The risk report's PNG: the loss distribution with VaR/ES marked, and fund size against the
probability of socialization (matplotlib, the `chart` extra)."""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

from ledger.risk.sizing import Results


def risk_chart(doc: dict[str, Any], res: Results) -> bytes:
    """Draw two panels; return the PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 10 ** len(doc["balance"].partition(".")[2])
    # Amounts have no ceiling (Python integers); floats beyond ~10^12 lose the histogram's
    # bins and beyond 10^308 overflow: drawn in a power-of-ten unit of the asset instead.
    top = max([*res.deficits, Fraction(doc["recommended_size"]) * scale,
               Fraction(doc["balance"]) * scale])
    shift = max(0, len(str(int(top) // scale)) - 12)
    unit = scale * 10**shift
    asset = doc["asset"] if not shift else f"10^{shift} {doc['asset']}"

    def amount(text: str) -> float:
        return float(Fraction(text) / 10**shift)

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    losses = [float(Fraction(d, unit)) for d in res.deficits]
    left.hist(losses, bins=60, color="#4c72b0")
    left.set_yscale("log")
    styles = {"99.0": ("#dd8452", "--"), "99.9": ("#c44e52", "-")}
    for level, (color, style) in styles.items():
        var, es = (amount(doc["deficits"][level][k]) for k in ("var", "es"))
        left.axvline(var, color=color, linestyle=style, label=f"VaR {level}%: {var:,.0f}")
        left.axvline(es, color=color, linestyle=":", label=f"ES {level}%: {es:,.0f}")
    left.set_title(f"Deficits per path ({doc['paths']} paths)")
    left.set_xlabel(f"total deficits ({asset})")
    left.set_ylabel("paths")
    left.legend(fontsize=8)
    for p in doc["policies"]:
        xs = [amount(size) for size, _ in p["socialization_curve"]]
        ys = [float(prob) for _, prob in p["socialization_curve"]]
        right.plot(xs, ys, marker="o", markersize=3, label=p["name"])
    right.axvline(amount(doc["balance"]), color="grey", linestyle="--", label="fund today")
    right.axvline(amount(doc["recommended_size"]), color="#c44e52", label="recommended")
    right.set_title("Fund size vs probability of socialization")
    right.set_xlabel(f"fund size at the start ({asset})")
    right.set_ylabel("P(any socialized loss)")
    right.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
