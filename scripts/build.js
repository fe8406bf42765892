#!/usr/bin/env node
// Builds the native addon from source with the machine's Rust toolchain.
//
// - Installed as a dependency (inside node_modules): `cargo build --release --locked` in a
//   temporary target folder, the library copied next to index.js, the folder removed. No
//   download, no build folder left behind, no @napi-rs/cli needed.
// - In a checkout of the repository: `napi build` for the host target, which also regenerates
//   the loader binding.js and its types binding.d.ts. The dev profile is the default (fast test loop); `--release` for
//   benchmarks. `cargo test` and clippy use the same `--target` (see scripts/cargo.js), so
//   dependencies are compiled once.
'use strict'
const { execFileSync, spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.resolve(__dirname, '..')
const release = process.argv.includes('--release')

function hostTriple() {
  const out = execFileSync('rustc', ['-vV'], { encoding: 'utf8' })
  const line = out.split('\n').find((l) => l.startsWith('host:'))
  return line.slice('host:'.length).trim()
}

// The file name the generated index.js loads: reshuffle-datastore.<platform>-<arch>[-abi].node
function addonFileName() {
  let suffix = `${process.platform}-${process.arch}`
  if (process.platform === 'linux') {
    const report = process.report && process.report.getReport ? process.report.getReport() : null
    const glibc = report && report.header && report.header.glibcVersionRuntime
    suffix += glibc ? '-gnu' : '-musl'
  } else if (process.platform === 'win32') {
    suffix += '-msvc'
  }
  return `reshuffle-datastore.${suffix}.node`
}

function libraryName() {
  if (process.platform === 'win32') return 'reshuffle_datastore.dll'
  if (process.platform === 'darwin') return 'libreshuffle_datastore.dylib'
  return 'libreshuffle_datastore.so'
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (r.error) {
    if (r.error.code === 'ENOENT') {
      console.error(
        `reshuffle-datastore: '${cmd}' was not found. Building this package needs the Rust toolchain (https://rustup.rs), then run: npm rebuild reshuffle-datastore`,
      )
    } else {
      console.error(`reshuffle-datastore: ${cmd} failed: ${r.error.message}`)
    }
    process.exit(1)
  }
  if (r.status !== 0) process.exit(r.status || 1)
}

// A CARGO_TARGET_DIR set by the user is used (and kept); otherwise a temporary folder is.
function buildAsDependency() {
  const own = !process.env.CARGO_TARGET_DIR
  const targetDir = own
    ? fs.mkdtempSync(path.join(os.tmpdir(), 'reshuffle-datastore-build-'))
    : process.env.CARGO_TARGET_DIR
  try {
    run('cargo', ['build', '--release', '--locked', '--lib'], { CARGO_TARGET_DIR: targetDir })
    fs.copyFileSync(path.join(targetDir, 'release', libraryName()), path.join(root, addonFileName()))
  } finally {
    if (own) fs.rmSync(targetDir, { recursive: true, force: true })
  }
}

function buildInCheckout() {
  const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  const args = [
    napi,
    'build',
    '--platform',
    '--target',
    hostTriple(),
    '--js',
    'binding.js',
    '--dts',
    'binding.d.ts',
    '--no-const-enum',
  ]
  if (release) args.push('--release')
  run(process.execPath, args)
}

const inNodeModules = root.split(path.sep).includes('node_modules')
if (inNodeModules || !fs.existsSync(path.join(root, 'node_modules', '@napi-rs', 'cli'))) {
  buildAsDependency()
} else {
  buildInCheckout()
}
