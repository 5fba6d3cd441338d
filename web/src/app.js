// The site's pages: the overview (charts, events, snapshots) and the verify page. The data
// comes from data.js (window.BACKSTOP_SITE, written by `backstop site build`); amounts stay
// exact decimal strings in tables and CSVs, and become floats only to be drawn.
import uPlot from "uplot";
import { verifyById, verifyDocument } from "./account.js";
import { engines, verifyConsistency, verifySnapshot } from "./verify.js";
import { verifyHoldings } from "./reserves.js";
import { verifyReceipt } from "./receipt.js";

const site = window.BACKSTOP_SITE;
const $ = (id) => document.getElementById(id);
const COLORS = ["#1f5fbf", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0b7285"];
// Rows per page of the events table: fewer on a phone, where each row stacks into a block.
const PAGE_SIZE = window.matchMedia && window.matchMedia("(max-width: 40rem)").matches ? 10 : 20;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

const seconds = (time) => Date.parse(time) / 1000;
const short = (hex) => `${hex.slice(0, 10)}…`;
const when = (time) => time.replace("T", " ").replace("Z", " UTC");

function table(headers, rows, numeric = []) {
  const head = el("tr", {}, ...headers.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : "", text: h })));
  const body = rows.map((cells) => el("tr", {}, ...cells.map((c, i) => {
    // data-label: on a phone each row stacks into "header: value" lines (app.css)
    const td = el("td", { class: numeric.includes(i) ? "num" : "", "data-label": headers[i] });
    td.append(c instanceof Node ? c : String(c ?? ""));
    return td;
  })));
  return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
}

// ------------------------------------------------------------------------------ charts

function chart(container, title, series, data, opts = {}) {
  if (!data[0].length) {
    container.append(el("p", { class: "muted", text: "No data in these snapshots." }));
    return null;
  }
  const width = () => Math.max(280, container.clientWidth || 600);
  const plot = new uPlot({
    title, width: width(), height: opts.height || 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // the log's times are UTC
    scales: { x: { time: true } },
    axes: [{ values: (u, splits) => {
      const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
      return splits.map((s) => new Date(s * 1000).toISOString().slice(span > 86400 ? 5 : 11, 16).replace("T", " "));
    } }, { size: 70, values: opts.yValues }],
    series: [{ label: "UTC", value: (u, v) => (v == null ? "" : new Date(v * 1000).toISOString().slice(0, 16).replace("T", " ")) },
      ...series],
  }, data, container);
  new ResizeObserver(() => plot.setSize({ width: width(), height: opts.height || 260 })).observe(container);
  return plot;
}

function balanceChart() {
  const assets = Object.keys(site.balances);
  const times = [...new Set(assets.flatMap((a) => site.balances[a].map((p) => p[0])))].sort();
  const columns = assets.map((asset) => {
    const points = site.balances[asset];
    let j = -1;
    return times.map((t) => {
      while (j + 1 < points.length && points[j + 1][0] <= t) j++;
      return j < 0 ? null : Number(points[j][2]);
    });
  });
  chart($("chart-balance"), "Fund balance", assets.map((a, i) => ({
    label: a, stroke: COLORS[i % COLORS.length], width: 2, paths: uPlot.paths.stepped({ align: 1 }),
  })), [times.map(seconds), ...columns]);
}

function flowsChart() {
  $("period-name").textContent = site.period;
  const rows = site.flows;
  // Grouped bars: covered left of the period's start, socialized right of it; fee inflows
  // (small beside the other two) as a line with points.
  const kinds = [["fees", "Fee inflows", "#2b8a3e", 0], ["covered", "Deficits covered", "#d9480f", -1],
    ["socialized", "Socialized loss", "#c2255c", 1]];
  const assets = [...new Set(rows.map((r) => r.asset))];
  const series = [];
  const half = site.period === "day" ? 43200 : 1800; // drawn at the middle of each period
  const data = [rows.filter((r) => r.asset === assets[0]).map((r) => seconds(r.period) + half)];
  for (const asset of assets.slice(0, 1)) {
    const mine = rows.filter((r) => r.asset === asset);
    for (const [key, label, color, align] of kinds) {
      series.push(align ? { label: `${label} (${asset})`, stroke: color, fill: `${color}99`, width: 1,
        paths: uPlot.paths.bars({ size: [0.4, 40], align }), points: { show: false } }
        : { label: `${label} (${asset})`, stroke: color, width: 2, points: { show: true, size: 5 } });
      data.push(mine.map((r) => Number(r[key])));
    }
  }
  chart($("chart-flows"), `Per ${site.period}`, series, data);
  const busy = rows.filter((r) => kinds.some(([k]) => Number(r[k]) !== 0));
  const details = el("details", {}, el("summary", { text: `The figures per ${site.period} (${busy.length} with activity)` }),
    table([site.period, "asset", "fee inflows", "deficits covered", "socialized"],
      busy.map((r) => [when(r.period), r.asset, r.fees, r.covered, r.socialized]), [2, 3, 4]));
  $("flows-table").append(details);
}

function coverageChart() {
  const markets = Object.keys(site.coverage);
  const times = [...new Set(markets.flatMap((m) => site.coverage[m].points.map((p) => p[0])))].sort();
  const columns = markets.map((m) => {
    const byTime = new Map(site.coverage[m].points.map((p) => [p[0], Number(p[3]) * 100]));
    return times.map((t) => (byTime.has(t) ? byTime.get(t) : null));
  });
  chart($("chart-coverage"), "Fund / open-interest notional (%)", markets.map((m, i) => ({
    label: m, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
    value: (u, v) => (v == null ? "" : `${v.toFixed(4)} %`),
  })), [times.map(seconds), ...columns], { yValues: (u, vals) => vals.map((v) => `${v}%`) });
  const latest = site.snapshots[site.snapshots.length - 1];
  const metrics = latest && latest.doc.metrics && latest.doc.metrics.markets;
  if (metrics) {
    $("risk").append(el("h3", { text: `At the latest snapshot (log size ${latest.size})` }),
      table(["market", "mark price", "open interest", "notional", "fund / notional"],
        Object.entries(metrics).map(([m, v]) => [m, v.mark_price, v.open_interest, v.open_interest_notional, v.fund_to_oi]),
        [1, 2, 3, 4]));
  }
  if (site.risk.length) {
    const paths = [...new Set(site.risk.flatMap((r) => r.figures.map((f) => f[0])))];
    $("risk").append(el("h3", { text: "Sizing figures the snapshots carry (metrics.risk)" }),
      table(["figure", ...site.risk.map((r) => `size ${r.size}`)],
        paths.map((p) => [p, ...site.risk.map((r) => (r.figures.find((f) => f[0] === p) || [])[1] ?? "")]),
        site.risk.map((_, i) => i + 1)));
  }
}

// ------------------------------------------------------------------------------ events

function eventsTable() {
  const account = $("filter-account");
  const market = $("filter-market");
  const kind = $("filter-kind");
  // The filters apply as one types; Enter must not submit the form (no inline handler: the CSP).
  $("event-filter").addEventListener("submit", (e) => e.preventDefault());
  for (const m of [...new Set(site.events.map((e) => e.market).filter(Boolean))].sort()) market.append(el("option", { value: m, text: m }));
  for (const k of [...new Set(site.events.map((e) => e.kind))].sort()) kind.append(el("option", { value: k, text: k }));
  let page = 0;
  const render = () => {
    const needle = account.value.trim().toLowerCase();
    const rows = site.events.filter((e) => (!needle || (e.account || "").toLowerCase().includes(needle))
      && (!market.value || e.market === market.value) && (!kind.value || e.kind === kind.value));
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    const shown = rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    const prev = el("button", { type: "button", class: "secondary", text: "← Previous" });
    const next = el("button", { type: "button", class: "secondary", text: "Next →" });
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    prev.onclick = () => { page--; render(); $("events").querySelector("button:not([disabled])")?.focus(); };
    next.onclick = () => { page++; render(); $("events").querySelector("button:not([disabled])")?.focus(); };
    $("events").replaceChildren(
      table(["#", "time", "what", "market", "account", "amount", "method", "details"], shown.map((e) => [
        e.index, when(e.time), e.kind, e.market || "", e.account || "", `${e.amount} ${e.asset}`, e.method,
        e.kind === "ADL" ? `${e.adl_quantity} at ${e.adl_price}` : e.unresolved && e.unresolved !== "0" && !/^0\.0*$/.test(e.unresolved) ? `unresolved ${e.unresolved}` : `ref ${e.ref}`,
      ]), [0, 5]),
      el("div", { class: "pager" }, prev, el("span", { text: `Page ${page + 1} of ${pages} · ${rows.length} events` }), next));
  };
  for (const input of [account, market, kind]) input.addEventListener("input", () => { page = 0; render(); });
  render();
}

function snapshotsTable() {
  const rows = [...site.snapshots].reverse().map((s) => [
    when(s.time), s.size, el("span", { class: "hash", title: s.root, text: short(s.root) }),
    s.signers.map((k) => el("code", { text: k })).reduce((p, c) => { p.append(c, " "); return p; }, el("span")),
    el("details", {}, el("summary", { text: "checkpoint" }), el("pre", { text: s.checkpoint || "(none)" })),
    s.accounts, Object.entries(s.reserves).map(([a, v]) => `${v} ${a}`).join(", "),
    el("a", { href: s.file, text: "JSON", "aria-label": `snapshot.json at log size ${s.size}` }),
  ]);
  $("snapshots").append(table(["time", "log size", "root", "signed by", "checkpoint", "accounts", "fund balance (ledger)", "file"], rows, [1, 5]));
}

// ------------------------------------------------------------------------------ reserves

// long hex (address, token) wraps anywhere rather than widening the table past the screen
const holdingWhere = (h) => el("span", { class: "wrap-any", text: holdingText(h) });
const holdingText = (h) => (h.kind === "onchain"
  ? `address ${h.address} on ${h.chain}, ${h.token ? `token ${h.token}` : "native coin"}, block ${h.block}`
  : `custodian ${h.custodian}, account ${h.account}, as of ${when(h.as_of)}`);
const withHoldings = () => site.snapshots.filter((s) => Array.isArray(s.doc.holdings));

function reservesOverview() {
  const box = $("reserves");
  const snaps = withHoldings();
  if (!snaps.length) {
    box.append(el("p", { class: "muted", text: "These snapshots carry no proof of reserves (no holdings: backstop-snapshot/1). The fund balance above is the ledger's own figure." }));
    return;
  }
  const s = snaps[snaps.length - 1];
  box.append(el("p", { class: "plain", text: `At the snapshot of ${when(s.time)} (log size ${s.size}) the operator lists ${s.doc.holdings.length} holding(s), each signed for that very snapshot:` }),
    table(["asset", "amount claimed", "where"], s.doc.holdings.map((h) => [h.asset, h.amount, holdingWhere(h)]), [1]),
    el("p", {}, el("a", { class: "button", href: "verify.html#h-reserves", text: "Check the signatures and the reserve ratio" })));
}

// ------------------------------------------------------------------------------ pools

const balancesText = (balances) => Object.entries(balances).map(([a, v]) => `${v} ${a}`).join(", ");

function claimsText(c) {
  if (!c) return "no cap";
  const caps = [c.total === null ? null : `total cap ${c.total} ${c.asset} (claimed ${c.claimed_total})`,
    c.per_period === null ? null : `${c.per_period} ${c.asset} per ${c.period_seconds} s (claimed ${c.claimed_period} in the period from ${when(c.period_start)})`];
  return `${caps.filter(Boolean).join("; ")}; claimed in all ${c.claimed_total} ${c.asset}`;
}

function adlText(adl) {
  if (!adl) return "no ADL rule";
  const ratio = adl.ratio === null ? "no ratio" : `ratio ${adl.ratio}`;
  const now = adl.state === "adl" ? `in ADL since event ${adl.since}` : "normal";
  return `${now}: balance ${adl.balance}, peak ${adl.peak} (event ${adl.peak_index}, ${when(adl.peak_time)}), ${ratio}`;
}

/** One section per pool of a format v2 fund (site.pools, from its backstop-snapshot/3 and
 * the log's ADL events); a v1 site has no site.pools and shows none. */
function poolsSection() {
  const data = site.pools;
  if (!data) return;
  const section = el("section", { id: "pools", "aria-labelledby": "h-pools" },
    el("h2", { id: "h-pools", text: "Pools" }),
    el("p", { class: "plain", text: `Each pool backs its own markets with its own balance. As the snapshot at log size ${data.size} (${when(data.time)}) states them, signed.` }));
  for (const p of data.pools) {
    const box = el("div", { class: "pool", id: `pool-${p.pool}`, "data-pool": p.pool },
      el("h3", { text: `Pool ${p.pool} (${p.kind})` }),
      el("p", {}, el("span", { class: "label", text: "Balance " }), el("span", { class: "pool-balance", text: balancesText(p.balances) })),
      table(["market", "kind", "settles in", "mark price", "open interest", "notional", "fund / notional", "claims against its cap"],
        p.markets.map((m) => [m.market, m.kind || "", m.settlement || "",
          m.observed ? m.observed.mark_price : "not observed", m.observed ? m.observed.open_interest : "",
          m.observed ? m.observed.open_interest_notional : "", m.observed ? (m.observed.fund_to_oi ?? "") : "",
          claimsText(m.claims)]), [3, 4, 5, 6]),
      el("p", {}, el("span", { class: "label", text: "ADL now " }), el("span", { class: "pool-adl", text: adlText(p.adl) })));
    if (p.adl_events.length) {
      box.append(el("h4", { text: "ADL over time" }), table(["#", "time", "ADL", "balance", "peak", "ratio", "threshold", "reason"],
        p.adl_events.map((e) => [e.index, when(e.time), e.event, e.balance ?? "", e.peak ?? "", e.ratio ?? "",
          e.event === "started" ? `start below ${e.start_ratio}` : `stop above ${e.stop_ratio}`, e.reason ?? ""]), [0, 3, 4, 5]));
    } else {
      box.append(el("p", { class: "muted", text: "No ADL started or ended in this pool's log." }));
    }
    if (p.history.length > 1) {
      box.append(el("details", {}, el("summary", { text: `Balance and ADL state at each of ${p.history.length} snapshots` }),
        table(["log size", "time", "balance", "ADL"], p.history.map(([size, time, b, adl]) => [size, when(time), balancesText(b),
          adl ? (adl.state === "adl" ? `in ADL since event ${adl.since}, ratio ${adl.ratio ?? "none"}` : `normal, ratio ${adl.ratio ?? "none"}`) : "no ADL rule"]), [0])));
    }
    section.append(box);
  }
  $("summary").closest("section").after(section);
}

function overview() {
  const latest = site.snapshots[site.snapshots.length - 1];
  const cards = [["Latest snapshot", when(latest.time)], ["Events in the log", latest.size],
    ...Object.entries(latest.reserves).map(([a, v]) => [`Fund balance (${a})`, v]),
    ["Accounts", latest.accounts], ["Snapshots", site.snapshots.length]];
  $("summary").append(...cards.map(([k, v]) => el("div", { class: "card" }, el("div", { class: "k", text: k }), el("div", { class: "v", text: String(v) }))));
  poolsSection();
  reservesOverview();
  balanceChart();
  flowsChart();
  coverageChart();
  eventsTable();
  snapshotsTable();
}

// ------------------------------------------------------------------------------ verify page

function verdict(box, result, what) {
  const ok = result.ok;
  const list = el("ul", {}, ...result.checks.map((c) => el("li", {
    text: `${c.ok === true ? "ok" : c.ok === false ? "FAILED" : "--"} ${c.check}${c.detail ? `: ${c.detail}` : ""}`,
  })));
  const word = ok ? "VERIFIED" : result.input ? "ERROR" : "FAILED";
  box.replaceChildren(el("div", { class: `box ${ok ? "pass" : "fail"}` },
    el("span", { class: `word ${ok ? "pass" : "fail"}`, text: word }),
    `: ${ok ? what : result.reason}`, list));
}

/** A shard the site carries, loaded as a script (what the CSP's script-src 'self' allows,
 * from file:// too); each one sets window.BACKSTOP_SHARDS["size/name"]. */
const shardsLoading = new Map();
function loadShard(size, name) {
  const key = `${size}/${name}`;
  if (!shardsLoading.has(key)) {
    shardsLoading.set(key, new Promise((resolve, reject) => {
      const tag = el("script", { src: `snapshots/${size}/accounts/${name}.js` });
      tag.onload = () => {
        const shard = (window.BACKSTOP_SHARDS || {})[key];
        if (shard) resolve(shard); else reject(new Error(`${tag.src}: loaded, but holds no shard ${key}`));
      };
      tag.onerror = () => reject(new Error(`${tag.getAttribute("src")}: could not be loaded`));
      document.head.append(tag);
    }).catch((error) => { shardsLoading.delete(key); throw error; }));
  }
  return shardsLoading.get(key);
}

const KIND_LABELS = [["fees", "Fees you paid into the fund"], ["payouts", "Payouts the fund made for you"],
  ["clawbacks", "Clawbacks charged to you"]];

/** VERIFIED with the figures verified, or FAILED / ERROR in plain words with the auditor's
 * reason and the checks one click away. */
function accountVerdict(box, result, s) {
  const ok = result.kind === "ok";
  const checks = el("ul", {}, ...result.checks.map((c) => el("li", {
    text: `${c.ok === true ? "ok" : c.ok === false ? "FAILED" : "--"} ${c.check}${c.detail ? `: ${c.detail}` : ""}`,
  })));
  const word = ok ? "VERIFIED" : result.kind === "input" ? "ERROR" : "FAILED";
  const parts = [el("span", { class: `word ${ok ? "pass" : "fail"}`, text: word })];
  if (ok) {
    const doc = result.doc;
    parts.push(`: the totals of ${doc.account} are in the snapshot at log size ${s.size}.`);
    const assets = s.doc.accounts.assets;
    parts.push(el("p", { class: "plain", text: `Signed ${when(s.time)} by ${s.signers.join(", ")}; your account is leaf ${doc.index} of ${doc.count}.` }),
      el("div", { class: "totals", id: "proof-totals" }, table(["asset", ...KIND_LABELS.map((k) => k[1])],
        assets.map((a) => [a, ...KIND_LABELS.map(([k]) => doc.totals[a][k])]), [1, 2, 3])));
    // Take it away: the same proof, for `backstop-audit account` offline, later.
    const blob = new Blob([JSON.stringify(doc, null, 1) + "\n"], { type: "application/json" });
    const safe = String(doc.account).replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 80);
    parts.push(el("p", {}, el("a", { id: "proof-save", class: "button", href: URL.createObjectURL(blob),
      download: `account-proof-${safe}-${s.size}.json`, text: "Save this proof" }),
    el("span", { class: "muted", text: " and check it yourself: " },
      el("code", { text: `backstop-audit account FILE --snapshot ${s.file} --key verifier-key` }))));
    parts.push(receiptsFor(doc.account));
    parts.push(el("details", {}, el("summary", { text: "The checks made" }), checks));
  } else {
    parts.push(`: ${result.plain}`);
    if (result.reason) {
      parts.push(el("details", { class: "technical" }, el("summary", { text: "Technical reason" }),
        el("code", { class: "reason", text: result.reason }), checks));
    }
  }
  box.replaceChildren(el("div", { class: `box ${ok ? "pass" : "fail"}` }, ...parts));
}

const RECEIPT_LABELS = { deficit_covered: "payout to you", clawback_charged: "clawback from you" };
const RECEIPT_KINDS = { deficit_covered: "a payout", clawback_charged: "a clawback" };

/** The account's payouts and clawbacks, each with its receipt file (a C2SP tlog-proof the
 * site carries: receipts/SIZE/FUND-INDEX.tlog-proof) to take away and check offline. */
function receiptsFor(account) {
  const r = site.receipts;
  if (!r) return el("p", { class: "muted", text: "This site carries no receipts (no snapshot with a checkpoint)." });
  const mine = r.items.filter((item) => item[2] === account);
  if (!mine.length) return el("p", { id: "receipts", class: "plain", text: `No payout to you and no clawback from you in the log up to size ${r.size}: no receipt to take.` });
  const rows = mine.map(([index, type, , asset, amount]) => [index, RECEIPT_LABELS[type], `${amount} ${asset}`,
    el("a", { class: "receipt", href: `receipts/${r.size}/${site.fund}-${index}.tlog-proof`, download: `${site.fund}-${index}.tlog-proof`, text: "Download receipt" })]);
  // a trader clawed back hundreds of times: the list folded, one click away
  const list = el("details", {}, el("summary", { text: `Your ${mine.length} payout(s) and clawback(s) in the log up to size ${r.size}, each with a receipt` }),
    table(["event", "what", "amount", "receipt"], rows, [0, 2]));
  if (mine.length <= 10) list.setAttribute("open", "");
  return el("div", { id: "receipts" },
    el("p", { class: "plain", text: "A receipt holds the event, its inclusion proof and the signed checkpoint: keep it, and check it later with no network." }),
    list,
    el("p", { class: "muted" }, "Check one yourself: ", el("code", { text: "backstop-audit receipt FILE --key verifier-key" })));
}

function reservesSection(currentKey) {
  const snaps = withHoldings();
  const select = $("res-snapshot");
  if (!snaps.length) {
    $("res-result").replaceChildren(el("p", { class: "muted", text: "These snapshots carry no holdings (backstop-snapshot/1): there is no proof of reserves to check." }));
    $("res-verify").disabled = true;
    return;
  }
  for (const [i, s] of snaps.entries()) select.append(el("option", { value: String(i), text: `log size ${s.size} · ${when(s.time)}` }));
  select.value = String(snaps.length - 1);
  $("res-verify").onclick = async () => {
    const s = snaps[Number(select.value)];
    const pinned = $("res-custodian").value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    const result = await verifyHoldings(s.doc, [currentKey()], pinned);
    const ok = result.ok;
    const word = ok ? "VERIFIED" : result.input ? "ERROR" : "FAILED";
    const parts = [el("span", { class: `word ${ok ? "pass" : "fail"}`, text: word })];
    parts.push(ok ? `: every holding's signature verified for the snapshot at log size ${s.size}, and the signed holdings cover the fund balance in every asset.`
      : `: ${result.reason}`);
    if (Object.keys(result.assets).length) {
      parts.push(el("div", { id: "res-ratios" }, table(["asset", "fund balance (the ledger's own figure)", "held, signatures verified", "reserve ratio"],
        Object.entries(result.assets).map(([a, v]) => [a, v.reserve, v.signed, v.ratio ?? "(no reserve)"]), [1, 2, 3])));
    }
    if (result.holdings.length) {
      parts.push(el("div", { id: "res-holdings" }, table(["#", "asset", "amount", "where", "signature"],
        result.holdings.map((h) => [h.index, h.asset, h.amount, holdingWhere(s.doc.holdings[h.index]),
          el("span", { class: `word ${h.ok ? "pass" : "fail"}`, text: h.ok ? "verified" : `FAILED: ${h.reason}` })]), [0, 2])));
    }
    parts.push(el("p", { class: "muted" }, "The balances on chain are not checked here. Check them against your own node: ",
      el("code", { text: `backstop-audit reserves ${s.file} --key verifier-key --rpc URL-OF-YOUR-NODE --tokens YOUR-TOKENS.json --custodian-key CUSTODIAN-KEY` })));
    parts.push(el("details", {}, el("summary", { text: "The checks made" }), el("ul", {}, ...result.checks.map((c) => el("li", {
      text: `${c.ok === true ? "ok" : c.ok === false ? "FAILED" : "--"} ${c.check}${c.detail ? `: ${c.detail}` : ""}`,
    })))));
    $("res-result").replaceChildren(el("div", { class: `box ${ok ? "pass" : "fail"}` }, ...parts));
  };
}

function verifyPage() {
  let key = site.key.vkey;
  const showKey = (source) => { $("key-current").textContent = key; $("key-source").textContent = source; };
  showKey(`(${site.key.source})`);
  $("key-use").onclick = () => {
    const text = $("key-input").value.trim();
    if (!text) { $("key-status").textContent = "Paste a key first."; return; }
    key = text;
    showKey("(pasted by you)");
    $("key-status").textContent = "The checks below now use the pasted key.";
  };
  $("key-reset").onclick = () => { key = site.key.vkey; showKey(`(${site.key.source})`); $("key-status").textContent = ""; };

  const snaps = site.snapshots;
  const label = (s) => `log size ${s.size} · ${when(s.time)}`;
  for (const select of [$("proof-snapshot"), $("cons-old"), $("cons-new")]) {
    for (const [i, s] of snaps.entries()) select.append(el("option", { value: String(i), text: label(s) }));
  }
  $("proof-snapshot").value = String(snaps.length - 1);
  $("cons-new").value = String(snaps.length - 1);
  $("cons-old").value = String(Math.max(0, snaps.length - 2));

  $("snaps-verify").onclick = async () => {
    const out = $("snaps-result");
    out.replaceChildren();
    let verified = 0;
    for (const s of snaps) {
      const r = await verifySnapshot(s.doc, [key]);
      verified += r.ok ? 1 : 0;
      out.append(el("li", {}, el("span", { class: `word ${r.ok ? "pass" : "fail"}`, text: r.ok ? "VERIFIED" : r.input ? "ERROR" : "FAILED" }),
        ` ${label(s)}${r.ok ? "" : `: ${r.reason}`}`));
    }
    $("snaps-summary").textContent = `${verified} of ${snaps.length} snapshots verified with the key in use.`;
    showEngines();
  };

  const parse = (text, what) => {
    try {
      return [JSON.parse(text), null];
    } catch (error) {
      return [null, { ok: false, input: true, reason: `${what}: not JSON (${error.message})`, checks: [] }];
    }
  };
  const loadProof = (text) => {
    $("proof-input").value = text;
    const [doc] = parse(text, "account proof");
    if (doc && Number.isSafeInteger(doc.log_size)) {
      const i = snaps.findIndex((s) => s.size === doc.log_size);
      if (i >= 0) $("proof-snapshot").value = String(i);
    }
    where();
  };
  const drop = $("drop");
  const file = $("proof-file");
  $("proof-choose").onclick = () => file.click(); // a real button: Enter and Space work
  file.onchange = async () => { if (file.files[0]) loadProof(await file.files[0].text()); };
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) loadProof(await f.text());
  };
  $("proof-input").addEventListener("change", () => loadProof($("proof-input").value));

  const where = () => {
    const s = snaps[Number($("proof-snapshot").value)];
    const carried = snaps.filter((x) => x.shards).map((x) => `log size ${x.size}`);
    $("proof-where").textContent = s.shards
      ? `This site carries the proofs of the ${s.shards.accounts} accounts of the snapshot at log size ${s.size}.`
      : `This site does not carry the account proofs of this snapshot${carried.length ? ` (only of ${carried.join(", ")})` : ""}: use a proof file below.`;
  };
  $("proof-snapshot").addEventListener("change", where);
  where();
  // the overview's "check your own totals": once the page has scrolled to the section
  if (location.hash === "#h-account") window.addEventListener("load", () => $("proof-account").focus());

  $("proof-verify").onclick = async () => {
    const box = $("proof-result");
    box.replaceChildren(el("p", { class: "muted", text: "Checking…" }));
    const s = snaps[Number($("proof-snapshot").value)];
    const account = $("proof-account").value.trim();
    const nonce = $("proof-nonce").value.trim().toLowerCase();
    const text = $("proof-input").value.trim();
    let result;
    try {
      if (text) {
        const [doc, error] = parse(text, "account proof");
        result = error ? { kind: "input", plain: "That file is not a proof: it is not JSON.", reason: error.reason, checks: [] }
          : await verifyDocument(doc, account, s, [key], snaps);
      } else {
        result = await verifyById(s, account, nonce, [key], loadShard, snaps);
      }
    } catch (error) {
      result = { kind: "input", plain: "The proofs of this snapshot could not be loaded from this site.", reason: error.message, checks: [] };
    }
    accountVerdict(box, result, s);
    showEngines();
  };
  $("cons-verify").onclick = async () => {
    const a = snaps[Number($("cons-old").value)];
    const b = snaps[Number($("cons-new").value)];
    const text = $("cons-proof").value.trim();
    const [proof, error] = text ? parse(text, "consistency proof") : [null, null];
    const result = error || await verifyConsistency(a.doc, b.doc, [key], proof);
    verdict($("cons-result"), result, `the log of size ${a.size} is the beginning of the log of size ${b.size}.`);
    showEngines();
  };
  reservesSection(() => key);
  const receiptFile = $("receipt-file");
  $("receipt-choose").onclick = () => receiptFile.click();
  receiptFile.onchange = async () => { if (receiptFile.files[0]) $("receipt-input").value = await receiptFile.files[0].text(); };
  $("receipt-verify").onclick = async () => {
    const text = $("receipt-input").value;
    const result = await verifyReceipt(text.endsWith("\n") ? text : `${text}\n`, [key]);
    const f = result.figures;
    const what = f.account ? `${RECEIPT_KINDS[f.type]} of ${f.amount} ${f.asset} (account ${f.account})` : `a ${f.type} event`;
    verdict($("receipt-result"), result, `${what}, event ${f.index} of the log of ${f.log_size} events (${f.origin}), under a checkpoint the key in use signed.`);
    showEngines();
  };
  const showEngines = () => { $("engines").textContent = `SHA-256 by ${engines.sha256}; Ed25519 by ${engines.ed25519}.`; };
}

function start() {
  if (!site) {
    document.body.prepend(el("p", { class: "box fail", text: "data.js is missing: rebuild the site with `backstop site build`." }));
    return;
  }
  $("fund-name").textContent = `Fund ${site.fund}`;
  $("built").textContent = `Built from ${site.snapshots.length} signed snapshots of fund ${site.fund}, the latest at ${when(site.snapshots[site.snapshots.length - 1].time)}.`;
  if (document.body.dataset.page === "verify") verifyPage();
  else overview();
}

start();
