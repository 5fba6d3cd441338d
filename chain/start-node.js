// Starts a local Ganache node for the tests and lives exactly as long as whoever started it.
//   node start-node.js --port P --keys FILE [--host 127.0.0.1] [--chain-id 1337] [--accounts 10]
//                      [--time 2020-03-12T00:30:00Z --block-seconds 60]
// With --time and --block-seconds, block times are fixed too: block 0 at --time, and each new
// block --block-seconds after its parent (never the wall clock), so block N's time is exact.
// Deterministic: a fixed mnemonic (so fixed accounts and keys), a fixed chain id, and instant
// mining (each transaction is mined into its own block at once). Once listening, it writes
// the funded accounts and their private keys to FILE as JSON: {"0xaddress": "0xkey", ...}.
// It exits when its standard input closes: the test process holds the other end of that pipe,
// so the node dies with it even when the test process is killed outright.
"use strict";
const fs = require("fs");
const ganache = require("ganache");

const MNEMONIC = "test test test test test test test test test test test junk";

function option(name, fallback) {
  const at = process.argv.indexOf("--" + name);
  if (at === -1) {
    if (fallback === undefined) throw new Error("missing --" + name);
    return fallback;
  }
  return process.argv[at + 1];
}

const host = option("host", "127.0.0.1");
const port = Number(option("port"));
const keysFile = option("keys");
const genesisTime = option("time", "");
const blockSeconds = option("block-seconds", "");
const chain = { chainId: Number(option("chain-id", "1337")) };
const miner = { instamine: "eager" };
if (genesisTime !== "") chain.time = new Date(genesisTime);
if (blockSeconds !== "") miner.timestampIncrement = Number(blockSeconds);
const server = ganache.server({
  chain,
  wallet: { mnemonic: MNEMONIC, totalAccounts: Number(option("accounts", "10")), defaultBalance: 1000 },
  miner,
  logging: { quiet: true },
});

function stop(code) {
  server.close().finally(() => process.exit(code));
  setTimeout(() => process.exit(code), 2000).unref();
}

process.stdin.on("end", () => stop(0));
process.stdin.on("close", () => stop(0));
process.stdin.resume();
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));

server.listen(port, host, (error) => {
  if (error) {
    console.error("ganache: cannot listen on " + host + ":" + port + ": " + error.message);
    process.exit(1);
  }
  const accounts = server.provider.getInitialAccounts();
  const keys = {};
  for (const address of Object.keys(accounts)) keys[address] = accounts[address].secretKey;
  fs.writeFileSync(keysFile + ".tmp", JSON.stringify(keys));
  fs.renameSync(keysFile + ".tmp", keysFile);
});
