'use strict'
// Platform names of the prebuilt binaries, spelled as napi-rs spells them (`linux-x64-gnu`,
// `darwin-arm64`, `win32-x64-msvc`): the suffix of each per-platform package
// (`reshuffle-datastore-linux-x64-gnu`) and of its file (`reshuffle-datastore.linux-x64-gnu.node`).
// The install script runs without @napi-rs/cli (it is a devDependency), so the few rules it needs
// are here; __test__/versions.spec.js checks them against @napi-rs/cli's own `parseTriple`.
const fs = require('fs')
const path = require('path')

const root = path.resolve(__dirname, '..')

const ARCH = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }
const PLATFORM = { linux: 'linux', darwin: 'darwin', windows: 'win32', freebsd: 'freebsd' }

// `x86_64-unknown-linux-gnu` -> `linux-x64-gnu`; `aarch64-apple-darwin` -> `darwin-arm64`.
function platformOfTriple(triple) {
  const parts = triple.split('-')
  const arch = ARCH[parts[0]] || parts[0]
  const sys = parts[2] === 'darwin' ? 'darwin' : parts[2]
  const platform = PLATFORM[sys] || sys
  const abi = parts[3]
  return abi ? `${platform}-${arch}-${abi}` : `${platform}-${arch}`
}

function manifest(dir = root) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
}

// Every target of `napi.targets` with the names derived from it.
function prebuiltTargets(pkg = manifest()) {
  return pkg.napi.targets.map((triple) => {
    const platform = platformOfTriple(triple)
    return {
      triple,
      platform,
      packageName: `${pkg.name}-${platform}`,
      fileName: `${pkg.napi.binaryName}.${platform}.node`,
    }
  })
}

// This machine's C library on Linux: 'gnu' when Node runs on glibc, else 'musl'.
function linuxLibc() {
  const report = process.report && process.report.getReport ? process.report.getReport() : null
  return report && report.header && report.header.glibcVersionRuntime ? 'gnu' : 'musl'
}

// The platform name of the running Node, in the same spelling: what the generated loader
// (binding.js) looks for first.
function hostPlatform() {
  const base = `${process.platform}-${process.arch}`
  if (process.platform === 'linux') return `${base}-${linuxLibc()}${process.arch === 'arm' ? 'eabihf' : ''}`
  if (process.platform === 'win32') return `${base}-msvc`
  return base
}

module.exports = { platformOfTriple, prebuiltTargets, hostPlatform, manifest, root }
