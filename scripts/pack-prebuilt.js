#!/usr/bin/env node
// `npm run pack:prebuilt`: builds this machine's target in release mode and writes two tarballs
// into dist/: the main package (scripts/pack-main.js) and the per-platform package that carries
// the binary, e.g. reshuffle-datastore-linux-x64-gnu. Prints both paths, one per line.
//
// A linux-gnu binary is linked with cargo-zigbuild against glibc 2.17, as napi-rs's own linux-gnu
// builds are, so it loads on any glibc from 2.17 on (CentOS 7, Debian 8 and everything newer)
// whatever glibc the build machine has. zig and cargo-zigbuild come from PyPI:
// `pip install cargo-zigbuild ziglang`. Other hosts build with plain cargo.
// The build has its own target folder (target/prebuilt), so it never invalidates the dev build.
// RESHUFFLE_DATASTORE_PREBUILT_PROFILE names another cargo profile than `release`: the install
// tests use `prebuilt-check` (Cargo.toml), which packs and links the same way, unoptimised, in a
// fraction of the time; releases always use `release`.
'use strict'
const { execFileSync, spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { highestGlibc, compareVersions } = require('./glibc')
const { npmPack, packMain } = require('./pack-main')
const { manifest, prebuiltTargets, root } = require('./targets')

const GLIBC = '2.17'

function fail(message) {
  console.error(`pack:prebuilt: ${message}`)
  process.exit(1)
}

function hostTriple() {
  const out = execFileSync('rustc', ['-vV'], { encoding: 'utf8' })
  return out
    .split('\n')
    .find((l) => l.startsWith('host:'))
    .slice('host:'.length)
    .trim()
}

function libraryName(triple) {
  if (triple.includes('windows')) return 'reshuffle_datastore.dll'
  if (triple.includes('darwin')) return 'libreshuffle_datastore.dylib'
  return 'libreshuffle_datastore.so'
}

function cargo(args, env) {
  const r = spawnSync('cargo', args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (r.error) fail(`cargo: ${r.error.message}`)
  if (r.status !== 0) process.exit(r.status || 1)
}

// Builds the library for `triple` in `profile`; returns its path.
function build(triple, profile) {
  const targetDir = path.join(root, 'target', 'prebuilt')
  const common = ['--profile', profile, '--locked', '--lib']
  if (triple.endsWith('-linux-gnu')) {
    const zigbuild = spawnSync('cargo', ['zigbuild', '--help'], { stdio: 'ignore' })
    if (zigbuild.error || zigbuild.status !== 0) {
      fail(
        `a ${triple} binary for glibc ${GLIBC} is linked with cargo-zigbuild and zig, which are not ` +
          'installed. Install both with: pip install cargo-zigbuild ziglang',
      )
    }
    cargo(['zigbuild', ...common, '--target', `${triple}.${GLIBC}`], { CARGO_TARGET_DIR: targetDir })
  } else {
    cargo(['build', ...common, '--target', triple], { CARGO_TARGET_DIR: targetDir })
  }
  return path.join(targetDir, triple, profile, libraryName(triple))
}

function packPlatform(target, library, dest) {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'reshuffle-datastore-pack-'))
  try {
    const npmDir = path.join(root, 'npm', target.platform)
    for (const f of fs.readdirSync(npmDir)) fs.copyFileSync(path.join(npmDir, f), path.join(stage, f))
    fs.copyFileSync(library, path.join(stage, target.fileName))
    return npmPack(stage, dest)
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

function main() {
  const pkg = manifest()
  const triple = hostTriple()
  const target = prebuiltTargets(pkg).find((t) => t.triple === triple)
  if (!target) fail(`this machine's target ${triple} is not one of napi.targets in package.json`)

  const profile = process.env.RESHUFFLE_DATASTORE_PREBUILT_PROFILE || 'release'
  if (!/^[a-z][a-z0-9-]*$/.test(profile) || profile === 'dev') fail(`not a release-like cargo profile: ${profile}`)
  const library = build(triple, profile)
  if (triple.endsWith('-linux-gnu')) {
    const needs = highestGlibc(library)
    if (!needs || compareVersions(needs, GLIBC) > 0) {
      fail(`${library} needs glibc ${needs || '(none found)'}, more than ${GLIBC}`)
    }
  }

  const dest = path.join(root, 'dist')
  fs.mkdirSync(dest, { recursive: true })
  for (const f of fs.readdirSync(dest)) if (f.endsWith('.tgz')) fs.rmSync(path.join(dest, f))
  console.log(packMain(dest))
  console.log(packPlatform(target, library, dest))
}

main()
