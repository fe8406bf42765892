#!/usr/bin/env node
// The install script, and the build of a checkout.
//
// Installed as a dependency (inside node_modules), in this order:
// 1. A native binary that loads is already there: the per-platform package
//    reshuffle-datastore-<platform> (an optional dependency that npm installs only where its
//    os/cpu/libc match) or a `.node` next to index.js. Nothing to do: no build, no download.
// 2. Else, where the Rust toolchain is (cargo on PATH): `cargo build --release --locked` in a
//    temporary target folder, the library copied next to index.js, the folder removed.
// 3. Else: fail with one message that names this platform and the ways out.
//
// In a checkout of the repository: `napi build` for the host target, which also regenerates the
// loader binding.js and its types binding.d.ts. The dev profile is the default (fast test loop);
// `--release` for benchmarks. `cargo test` and clippy use the same `--target` (see
// scripts/cargo.js), so dependencies are compiled once.
'use strict'
const { execFileSync, spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { loadedBinary, noBinaryMessage } = require('./native-binary')
const { hostPlatform, root } = require('./targets')

const release = process.argv.includes('--release')

function hostTriple() {
  const out = execFileSync('rustc', ['-vV'], { encoding: 'utf8' })
  const line = out.split('\n').find((l) => l.startsWith('host:'))
  return line.slice('host:'.length).trim()
}

function libraryName() {
  if (process.platform === 'win32') return 'reshuffle_datastore.dll'
  if (process.platform === 'darwin') return 'libreshuffle_datastore.dylib'
  return 'libreshuffle_datastore.so'
}

// A failed step: its message (if any) and the exit code of the install. Thrown rather than
// exiting on the spot, so that `finally` blocks still remove temporary folders.
class StepFailed extends Error {
  constructor(message, status) {
    super(message)
    this.status = status
  }
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (r.error) {
    throw new StepFailed(
      r.error.code === 'ENOENT'
        ? `reshuffle-datastore: '${cmd}' was not found. Building this package needs the Rust toolchain (https://rustup.rs), then run: npm rebuild reshuffle-datastore`
        : `reshuffle-datastore: ${cmd} failed: ${r.error.message}`,
      1,
    )
  }
  if (r.status !== 0) throw new StepFailed('', r.status || 1)
}

function hasCargo() {
  const r = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
  return !r.error && r.status === 0
}

// A CARGO_TARGET_DIR set by the user is used (and kept); otherwise a temporary folder is.
// RESHUFFLE_DATASTORE_CARGO_PROFILE picks another Cargo profile than release (`dev`: a debug
// build). The explicit host `--target` is the one `napi build` passes, so a kept target folder
// is shared with a checkout's builds.
function buildFromSource() {
  const own = !process.env.CARGO_TARGET_DIR
  const targetDir = own
    ? fs.mkdtempSync(path.join(os.tmpdir(), 'reshuffle-datastore-build-'))
    : process.env.CARGO_TARGET_DIR
  const profile = process.env.RESHUFFLE_DATASTORE_CARGO_PROFILE || 'release'
  const triple = hostTriple()
  try {
    const env = { CARGO_TARGET_DIR: targetDir }
    // A musl target links the C runtime statically by default, which leaves no cdylib to load;
    // `napi build` adds the same flag for musl targets.
    if (triple.endsWith('-musl')) {
      env.RUSTFLAGS = `${process.env.RUSTFLAGS || ''} -C target-feature=-crt-static`.trim()
    }
    run('cargo', ['build', '--profile', profile, '--locked', '--lib', '--target', triple], env)
    const built = path.join(targetDir, triple, profile === 'dev' ? 'debug' : profile, libraryName())
    fs.copyFileSync(built, path.join(root, `reshuffle-datastore.${hostPlatform()}.node`))
  } finally {
    if (own) fs.rmSync(targetDir, { recursive: true, force: true })
  }
}

function installAsDependency() {
  const found = loadedBinary()
  if (found.file) {
    console.log(`reshuffle-datastore: using ${path.relative(root, found.file)}`)
    return
  }
  if (!hasCargo()) throw new StepFailed(noBinaryMessage(found.error), 1)
  if (found.error) console.log(`reshuffle-datastore: no binary loads (${found.error}); building from source`)
  buildFromSource()
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
try {
  if (inNodeModules || !fs.existsSync(path.join(root, 'node_modules', '@napi-rs', 'cli'))) {
    installAsDependency()
  } else {
    buildInCheckout()
  }
} catch (e) {
  if (!(e instanceof StepFailed)) throw e
  if (e.message) console.error(e.message)
  process.exitCode = e.status
}
