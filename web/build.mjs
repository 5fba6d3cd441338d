// Build the site's assets into ledger/site_assets/ (package data of the Python package, so
// `backstop site build` needs no Node.js). Deterministic: same sources and lockfile, same bytes.
//   app.js      the page bundle (IIFE: a classic script also runs from file://)
//   app.css     the page's styles with uPlot's
//   verify.mjs  web/src/verify.js bundled as an ES module (the tests run it under Node)
//   index.html, verify.html  the two pages (data comes from the site's data.js)
//   manifest.json  SHA-256 of every source and output; tests/test_site_assets.py recomputes
//                  them without Node, so a source changed without a rebuild is caught.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..");
// BACKSTOP_SITE_ASSETS_OUT: build elsewhere (the rebuild-and-compare test).
const out = process.env.BACKSTOP_SITE_ASSETS_OUT || join(repo, "ledger", "site_assets");
mkdirSync(out, { recursive: true });

const common = { bundle: true, minify: true, legalComments: "eof", target: ["es2022"],
  logLevel: "warning", charset: "utf8", absWorkingDir: here }; // paths in comments: from web/
await build({ ...common, entryPoints: [join(here, "src/app.js")], outfile: join(out, "app.js"),
  format: "iife" });
await build({ ...common, entryPoints: [join(here, "src/app.css")], outfile: join(out, "app.css") });
await build({ ...common, minify: false, entryPoints: [join(here, "src/verify.js")],
  outfile: join(out, "verify.mjs"), format: "esm", platform: "neutral" });
for (const page of ["index.html", "verify.html"]) copyFileSync(join(here, "src", page), join(out, page));

const sha = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]);
const rel = (p) => relative(repo, p).split("\\").join("/");
const sources = ["package.json", "package-lock.json", "build.mjs"].map((f) => join(here, f))
  .concat(walk(join(here, "src")));
const manifest = {
  note: "written by web/build.mjs (make web); checked by tests/test_site_assets.py",
  sources: Object.fromEntries(sources.map((p) => [rel(p), sha(p)]).sort((a, b) => (a[0] < b[0] ? -1 : 1))),
  outputs: Object.fromEntries(["app.js", "app.css", "verify.mjs", "index.html", "verify.html"]
    .map((f) => [f, sha(join(out, f))]).sort()),
};
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
console.log(`built ${Object.keys(manifest.outputs).length} assets into ${out}`);
