#!/usr/bin/env node
// Packs the main package as it is published: the files `npm pack` takes from this checkout, with
// a package.json that lists every per-platform package of `napi.targets` as an optional
// dependency at the main package's own version (what `napi pre-publish` writes before
// `npm publish`). The checkout's package.json has no optionalDependencies, so that a clone
// installs (`npm install`, `npm ci`) before the platform packages are published.
// Usage: node scripts/pack-main.js [destination folder, default dist/]
'use strict'
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { manifest, prebuiltTargets, root } = require('./targets')

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

// The package.json that is published: this one plus the optional dependencies.
function releaseManifest(pkg = manifest()) {
  const optionalDependencies = { ...pkg.optionalDependencies }
  for (const t of prebuiltTargets(pkg)) optionalDependencies[t.packageName] = pkg.version
  return { ...pkg, optionalDependencies }
}

// Runs `npm pack` in `dir` and returns the tarball's path in `dest`.
function npmPack(dir, dest) {
  const out = execFileSync(npm, ['pack', '--json', '--pack-destination', dest], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: process.platform === 'win32',
  })
  return path.join(dest, JSON.parse(out)[0].filename)
}

function packMain(dest = path.join(root, 'dist')) {
  fs.mkdirSync(dest, { recursive: true })
  const listing = execFileSync(npm, ['pack', '--dry-run', '--json'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    shell: process.platform === 'win32',
  })
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'reshuffle-datastore-pack-'))
  try {
    for (const { path: file } of JSON.parse(listing)[0].files) {
      fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true })
      fs.copyFileSync(path.join(root, file), path.join(stage, file))
    }
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(releaseManifest(), null, 2) + '\n')
    return npmPack(stage, path.resolve(dest))
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

module.exports = { packMain, npmPack, releaseManifest }

if (require.main === module) console.log(packMain(process.argv[2] && path.resolve(process.argv[2])))
