"""The headline of a risk report, as the optional `metrics.risk` of a signed snapshot."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from auditor.formats.schemas import load_schema
from auditor.formats.wire import canonical_bytes, sha256_hex


class HeadlineError(ValueError):
    """The report cannot be published (one line: which field, why)."""


def risk_metrics(report: Any, fund: str, assets: dict[str, int]) -> dict[str, Any]:
    """`metrics.risk` from a `backstop risk --out` report of `fund`; HeadlineError if the
    report is not one, names another fund or asset, or its model hash does not match."""
    if not isinstance(report, dict) or report.get("format") != "backstop-risk/1":
        raise HeadlineError("format: not a `backstop risk` report (backstop-risk/1)")
    if report.get("fund") != fund:
        raise HeadlineError(f"fund: the report is of fund {report.get('fund')!r}, not {fund!r}")
    try:
        headline = {
            "asset": report["asset"],
            "es_999_deficits": report["deficits"]["99.9"]["es"],
            "cover_2": report["cover_2"],
            "recommended_size": report["recommended_size"],
            "balance": report["balance"],
            "coverage": report["coverage"],
            "probability_of_socialization": report["policies"][0]["probability_of_socialization"],
            "paths": report["paths"],
            "model": {"parameters": report["model"]["parameters"],
                      "hash": report["model"]["hash"]},
        }
    except (KeyError, IndexError, TypeError) as error:
        raise HeadlineError(f"{error}: missing from the report") from None
    if headline["asset"] not in assets:
        raise HeadlineError(f"asset: {headline['asset']!r} is not an asset of fund {fund!r}")
    schema = load_schema("snapshot")
    check = Draft202012Validator({"$ref": "#/$defs/risk_metrics", "$defs": schema["$defs"]})
    problem = next(iter(sorted(check.iter_errors(headline), key=lambda e: list(e.path))), None)
    if problem is not None:
        where = ".".join(str(p) for p in problem.path) or "(report)"
        raise HeadlineError(f"{where}: {problem.message[:200]}")
    if sha256_hex(canonical_bytes(headline["model"]["parameters"])) != headline["model"]["hash"]:
        raise HeadlineError("model.hash: is not the SHA-256 of the parameters' RFC 8785 bytes")
    return headline
