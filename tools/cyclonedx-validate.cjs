#!/usr/bin/env node
// Validate CycloneDX 1.6 JSON documents with the strict JSON validator of the CycloneDX
// JavaScript library (@cyclonedx/cyclonedx-library, pinned in tools/npm/package-lock.json):
// an implementation independent of the Python library that wrote them.
//
// usage: node tools/cyclonedx-validate.cjs NODE_MODULES_DIR BOM.json [BOM.json ...]
//   NODE_MODULES_DIR: where `npm ci --prefix .cache/npm` installed tools/npm (.cache/npm/node_modules)
// Prints one line per document to stdout: "valid <file>" or "invalid <file>: <JSON error details>".
// Exit codes: 0 all valid; 1 some document invalid; 2 usage error or missing dependency.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { createRequire } = require('node:module')

async function main (argv) {
  if (argv.length < 2) {
    process.stderr.write('usage: cyclonedx-validate.cjs NODE_MODULES_DIR BOM.json [BOM.json ...]\n')
    return 2
  }
  const [modules, ...files] = argv
  const requireFrom = createRequire(path.join(path.resolve(modules), '..', 'package.json'))
  let CDX
  try {
    CDX = requireFrom('@cyclonedx/cyclonedx-library')
  } catch (err) {
    process.stderr.write(`cannot load @cyclonedx/cyclonedx-library from ${modules}: ${err.message}\n` +
      'hint: npm ci --prefix .cache/npm (after copying tools/npm/package*.json there)\n')
    return 2
  }
  const validator = new CDX.Validation.JsonStrictValidator(CDX.Spec.Version.v1dot6)
  let failed = false
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8')
    let errors
    try {
      errors = await validator.validate(text)
    } catch (err) {
      process.stderr.write(`cannot validate ${file}: ${err.message}\n`)
      return 2
    }
    if (errors === null) {
      process.stdout.write(`valid ${file}\n`)
    } else {
      failed = true
      process.stdout.write(`invalid ${file}: ${JSON.stringify(errors)}\n`)
    }
  }
  return failed ? 1 : 0
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (err) => { process.stderr.write(`${err.stack || err}\n`); process.exitCode = 2 }
)
