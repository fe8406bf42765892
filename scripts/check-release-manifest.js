#!/usr/bin/env node
// prepublishOnly: refuses to publish a main package that does not list every platform package of
// napi.targets as an optional dependency at its own version. The checkout's package.json lists
// none; the release workflow's `napi pre-publish` adds them before `npm publish`, and
// scripts/pack-main.js packs a tarball that has them.
'use strict'
const path = require('path')
const { releaseManifest } = require('./pack-main')
const { manifest } = require('./targets')

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..'))
const pkg = manifest(dir)
const want = releaseManifest(pkg).optionalDependencies
const have = pkg.optionalDependencies || {}
const wrong = Object.keys(want).filter((name) => have[name] !== want[name])
if (wrong.length > 0) {
  console.error(
    `${pkg.name}@${pkg.version} would be published without its platform packages as optional ` +
      `dependencies at ${pkg.version} (${wrong.join(', ')}). Publish with the release workflow ` +
      '(napi pre-publish adds them), or publish the tarball that scripts/pack-main.js packs.',
  )
  process.exit(1)
}
