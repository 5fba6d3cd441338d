"""`backstop serve ROOT`: a published folder over HTTP with C2SP's headers (local use)."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.cli.options import InputExit
from ledger.service.static import make_server


@click.command("serve")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free one; the URL printed names it).")
def serve(root: Path, host: str, port: int) -> None:
    """Serve ROOT (a tiled log, a snapshot directory or a site) for local use, with the
    headers of docs/SERVING.md: checkpoint as text/plain; charset=utf-8 cached 5 s, tiles and
    entry bundles immutable. Runs until interrupted. In production, serve ROOT with nginx or
    Caddy configured as docs/SERVING.md shows."""
    try:
        server = make_server(root, host, port)
    except OSError as error:
        raise InputExit(f"--port {port}: cannot listen on {host} ({error.strerror or error})") \
            from None
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    click.echo(f"serving {root} at http://{bound_host}:{bound_port}/", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
