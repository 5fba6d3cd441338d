"""The front end shipped in ledger/site_assets/ is the build of web/ as committed.

web/build.mjs (`make web`) records the SHA-256 of every source (web/src/*, package.json,
package-lock.json, build.mjs) and of every output in ledger/site_assets/manifest.json. These
tests recompute both without Node.js, so a source edited without a rebuild, or an output
edited by hand, fails here; and, where Node.js and web/node_modules are present (CI:
`make browser web`, $BACKSTOP_REQUIRE_BROWSER), rebuild into a temporary folder and compare
the bytes: the build is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
ASSETS = ROOT / "ledger" / "site_assets"
MANIFEST = json.loads((ASSETS / "manifest.json").read_text())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_names_every_source_and_its_hash() -> None:
    sources = {WEB / name for name in ("package.json", "package-lock.json", "build.mjs")}
    sources |= {p for p in (WEB / "src").rglob("*") if p.is_file()}
    expected = {p.relative_to(ROOT).as_posix(): sha(p) for p in sources}
    assert MANIFEST["sources"] == expected, "web/ changed since the last build: run `make web`"


def test_shipped_assets_are_the_manifests_outputs() -> None:
    shipped = {p.name: sha(p) for p in ASSETS.iterdir()
               if p.is_file() and p.name not in ("manifest.json", "__init__.py")}
    assert shipped == MANIFEST["outputs"]
    assert set(shipped) == {"app.js", "app.css", "verify.mjs", "index.html", "verify.html"}


def test_no_asset_loads_anything_from_another_origin() -> None:
    """Nothing is fetched from a CDN: no page or bundle names an http(s) URL to load."""
    for name in ("index.html", "verify.html"):
        page = (ASSETS / name).read_text()
        assert "http://" not in page and "https://" not in page, name
    bundle = (ASSETS / "app.js").read_text()
    assert "fetch(" not in bundle and "importScripts" not in bundle


def test_rebuild_gives_the_same_bytes(tmp_path: Path) -> None:
    node = shutil.which("node")
    ready = node is not None and (WEB / "node_modules" / "esbuild").is_dir()
    if not ready:
        reason = "Node.js or web/node_modules missing (make web installs them)"
        if os.environ.get("BACKSTOP_REQUIRE_BROWSER"):
            pytest.fail(f"{reason}; BACKSTOP_REQUIRE_BROWSER is set")
        pytest.skip(reason)
    assert node is not None
    subprocess.run([node, str(WEB / "build.mjs")], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "BACKSTOP_SITE_ASSETS_OUT": str(tmp_path)})
    for name in [*MANIFEST["outputs"], "manifest.json"]:
        assert (tmp_path / name).read_bytes() == (ASSETS / name).read_bytes(), name


CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


@pytest.mark.parametrize("name", ["index.html", "verify.html"])
def test_pages_carry_a_content_security_policy_and_nothing_inline(name: str) -> None:
    """Both pages pin a Content-Security-Policy in their head, before anything it governs,
    and hold nothing it would block: no inline script, handler, style or javascript: URL."""
    from html.parser import HTMLParser

    class Page(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.policies: list[str] = []
            self.first_load: int | None = None  # position of the first script/stylesheet
            self.inline: list[str] = []
            self.in_script = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            named = dict(attrs)
            if tag == "meta" and (named.get("http-equiv") or "").lower() == \
                    "content-security-policy":
                self.policies.append(named.get("content") or "")
            if tag in ("script", "link") and self.first_load is None and not self.policies:
                self.first_load = len(self.inline)
                self.inline.append(f"<{tag}> before the policy")
            self.in_script = tag == "script"
            if tag == "script" and "src" not in named:
                self.inline.append("inline <script>")
            if tag == "style":
                self.inline.append("<style>")
            for key, value in attrs:
                if key.startswith("on") or key == "style":
                    self.inline.append(f"{tag} {key}=")
                if key in ("href", "src", "action") and (value or "").lower().startswith(
                        "javascript:"):
                    self.inline.append(f"{tag} {key}=javascript:")

        def handle_data(self, data: str) -> None:
            if self.in_script and data.strip():
                self.inline.append("script body")

        def handle_endtag(self, tag: str) -> None:
            self.in_script = False

    for folder in (ASSETS, WEB / "src"):
        page = Page()
        page.feed((folder / name).read_text())
        assert page.policies == [CSP], folder / name
        assert page.inline == [], folder / name
