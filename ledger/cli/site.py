"""`backstop site build`: the static transparency site (ledger.service.site)."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.cli.options import InputExit, force_option, refuse_overwrite
from ledger.service.outputs import OutputExists
from ledger.service.site import build_site
from ledger.service.site_figures import SiteError


@click.group()
def site() -> None:
    """The static transparency site: fund history, snapshots, verify-in-the-browser."""


@site.command("build")
@click.option("--published", "first", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="A published folder: a tiled log's ROOT (snapshot publish --layout tiles) "
                   "or one snapshot's directory. More DIRs may follow it.")
@click.argument("more", nargs=-1, metavar="[DIR...]",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the site to; absent or empty unless --force.")
@click.option("--key", metavar="VKEY|FILE",
              help="The operator's verifier key (name+id+key) or a file holding it, pinned "
                   "into the site. Default: the publication's verifier-key files (they must "
                   "agree). Every snapshot must be signed by it.")
@click.option("--account-shards", "account_shards", default="1", show_default=True,
              metavar="N|all",
              help="Carry the account-proof shards of the latest N snapshots (or all), so a "
                   "trader verifies their account by its id alone; 0 for none. One "
                   "snapshot's shards take a few hundred bytes per account.")
@click.option("--receipts/--no-receipts", "with_receipts", default=True, show_default=True,
              help="Carry a receipt (C2SP tlog-proof, about 1 KB) of every payout and "
                   "clawback of the latest snapshot, for the traders to download.")
@force_option
def build(first: Path, more: tuple[Path, ...], out: Path, key: str | None, account_shards: str,
          with_receipts: bool, force: bool) -> None:
    """Build a static site from published snapshots: open OUT/index.html from disk, or serve
    OUT as-is with any web server (python -m http.server -d OUT).

    \b
    It shows the fund balance per asset over time; fee inflows, deficits covered and
    socialized loss per period; coverage (fund versus open-interest notional); every
    socialized-loss and ADL event (paged, filterable); every snapshot with its root, signer
    and checkpoint; CSV downloads; and verify.html, which checks the snapshot signatures,
    consistency and a trader's account proof in the browser, with backstop-audit's verdicts:
    the trader types their account id and the page finds their proof in the shards it carries.

    Every snapshot must verify under the pinned key and commit to a prefix of one log, or
    nothing is written (exit 2).
    """
    if account_shards != "all" and not (account_shards.isascii() and account_shards.isdigit()):
        raise click.BadParameter(f"{account_shards!r} is neither a number of snapshots nor "
                                 "'all'", param_hint="--account-shards")
    refuse_overwrite("--out", out, force)
    try:
        data = build_site([first, *more], out, key, force,
                          None if account_shards == "all" else int(account_shards),
                          with_receipts)
    except SiteError as error:
        raise InputExit(str(error)) from None
    except OutputExists as error:  # taken since the check above
        raise InputExit(f"--out {error}") from None
    except OSError as error:
        raise InputExit(f"--out {out}: cannot write ({error.strerror or error})") from None
    click.echo(f"built the site of fund {data['fund']} from {len(data['snapshots'])} snapshots "
               f"({len(data['events'])} socialized-loss/ADL events) in {out}")
    click.echo(f"serve it: python -m http.server -d {out}  (or open {out / 'index.html'})")
