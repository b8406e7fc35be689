// Validates an AsyncAPI document with the AsyncAPI project's own parser
// (@asyncapi/parser, installed under .build/asyncapi by
// scripts/install-tools.sh asyncapi). Prints every diagnostic; exits 1 if
// any is an error, 2 on bad usage.
//
// Usage: node asyncapi_validate.mjs PARSER_DIR DOCUMENT
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const [parserDir, document] = process.argv.slice(2);
if (!parserDir || !document) {
  console.error("usage: node asyncapi_validate.mjs PARSER_DIR DOCUMENT");
  process.exit(2);
}
const require = createRequire(resolve(parserDir, "package.json"));
const { Parser } = require("@asyncapi/parser");
const parser = new Parser();
const { document: parsed, diagnostics } = await parser.parse(readFileSync(document, "utf8"), {
  source: resolve(document),
});
let errors = 0;
for (const d of diagnostics) {
  // Severity 0 is an error, 1 a warning, 2 information, 3 a hint.
  if (d.severity === 0) errors++;
  console.log(`${["error", "warning", "info", "hint"][d.severity]} ${d.path.join(".")}: ${d.message}`);
}
if (!parsed || errors > 0) {
  console.log(`${errors} errors`);
  process.exit(1);
}
console.log(`valid AsyncAPI ${parsed.version()}: ${parsed.channels().length} channels, ${parsed.messages().length} messages`);
