// Parses an AsyncAPI document with the reference parser (schema + semantic
// rules) and exits non-zero if it reports any error. Warnings are printed but
// do not fail: they are style advice (missing descriptions and the like).
//
// Usage: node scripts/asyncapi/validate.cjs <document> <dir with node_modules>
// scripts/validate-asyncapi.sh installs the parser into a cache dir and calls this.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const [file, toolsDir] = process.argv.slice(2);
  if (!file || !toolsDir) {
    console.error('usage: validate.cjs <asyncapi document> <tools dir>');
    return 2;
  }
  // The parser lives in a cache dir, not next to this script.
  const { Parser, DiagnosticSeverity } = require(
    require.resolve('@asyncapi/parser', { paths: [toolsDir] }),
  );
  const source = path.resolve(file);
  const text = fs.readFileSync(source, 'utf8');
  const { document, diagnostics } = await new Parser().parse(text, { source });

  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning);
  const where = (d) => (d.path && d.path.length ? d.path.join('.') : '(document)');
  for (const d of errors) console.error(`error   ${where(d)}: ${d.message} [${d.code}]`);
  for (const d of warnings) console.error(`warning ${where(d)}: ${d.message} [${d.code}]`);

  if (!document || errors.length > 0) {
    console.error(`${file}: invalid (${errors.length} errors, ${warnings.length} warnings)`);
    return 1;
  }
  const version = document.version();
  const channels = document.channels().length;
  const messages = document.allMessages().length;
  console.log(
    `${file}: valid AsyncAPI ${version} (${channels} channels, ${messages} messages, ${warnings.length} warnings)`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`validate.cjs: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
