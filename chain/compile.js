// Compiles contracts/Token.sol with the pinned solc-js and fixed settings into build/Token.json
// (ABI, creation bytecode, runtime bytecode, compiler version).
//   node compile.js            write build/Token.json
//   node compile.js --stdout   print the same JSON instead (tests compare it with the file)
// The output is deterministic: same compiler, same settings, same source -> same bytes. The
// bytecode ends in solc's metadata hash, which covers the source text, so any edit to
// Token.sol (even a comment) changes the bytecode and the recompile test shows a stale build.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const SOURCE = "contracts/Token.sol";
const OUT = path.join(__dirname, "build", "Token.json");

function compile() {
  const input = {
    language: "Solidity",
    sources: { [SOURCE]: { content: fs.readFileSync(path.join(__dirname, SOURCE), "utf8") } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "shanghai",
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  }
  const contract = output.contracts[SOURCE].Token;
  return {
    contractName: "Token",
    source: SOURCE,
    compiler: "solc-js " + solc.version(),
    settings: input.settings,
    abi: contract.abi,
    bytecode: "0x" + contract.evm.bytecode.object,
    deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
  };
}

const text = JSON.stringify(compile(), null, 2) + "\n";
if (process.argv.includes("--stdout")) {
  process.stdout.write(text);
} else {
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, text);
  console.log("wrote " + path.relative(process.cwd(), OUT));
}
