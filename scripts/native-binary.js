'use strict'
// Which native binary the package would use on this machine, and what to say when there is none.
const { spawnSync } = require('child_process')
const path = require('path')
const { hostPlatform, manifest, prebuiltTargets, root } = require('./targets')

// Loads the generated loader (binding.js) in a child process, exactly as `require` of the package
// would: the `.node` next to index.js first, then the per-platform package. Returns `{ file }`,
// the binary that loaded, or `{ error }`: why none did (undefined when no candidate file exists).
function loadedBinary() {
  const probe = `
    // The loader's error chains one error per candidate it tried; a missing file is expected.
    const report = (e) => {
      const found = []
      for (let c = e.cause; c; c = c.cause) if (!/^Cannot find module /.test(c.message)) found.push(c.message)
      return found.join('; ') || undefined
    }
    try {
      require(${JSON.stringify(path.join(root, 'binding.js'))})
      const file = Object.keys(require.cache).find((k) => k.endsWith('.node'))
      process.stdout.write(JSON.stringify({ file }))
    } catch (e) {
      process.stdout.write(JSON.stringify({ error: report(e) }))
    }`
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: root, encoding: 'utf8', timeout: 60000 })
  try {
    return JSON.parse(r.stdout)
  } catch {
    return { error: `loading the binary ended the process (${r.signal || `exit code ${r.status}`})` }
  }
}

// The one message of an install that has neither a binary nor the toolchain to build one.
function noBinaryMessage(loadError) {
  const pkg = manifest()
  const platform = hostPlatform()
  const targets = prebuiltTargets(pkg)
  const match = targets.find((t) => t.platform === platform)
  const lines = [`reshuffle-datastore: no native binary for this platform (${platform}, Node ${process.version}).`]
  const missingPackage = match && !loadError
  if (loadError) lines.push(`  A binary is installed but does not load: ${loadError}`)
  if (missingPackage) {
    lines.push(
      `  Its prebuilt binary comes in the optional dependency ${match.packageName}@${pkg.version}, which npm`,
      '  did not install: optional dependencies were omitted (--omit=optional), it could not be fetched,',
      '  or a package-lock.json written on another platform left it out.',
    )
  } else {
    lines.push(`  Prebuilt binaries exist for: ${targets.map((t) => t.platform).join(', ')}.`)
  }
  lines.push(
    "  Building it from source needs the Rust toolchain, and 'cargo' is not on PATH.",
    'Ways out:',
    missingPackage
      ? `  - install it with optional dependencies (npm install ${match.packageName}@${pkg.version} adds it), or`
      : '  - use one of the platforms with a prebuilt binary, or',
    '  - install Rust 1.85 or later (https://rustup.rs), then run: npm rebuild reshuffle-datastore',
  )
  return lines.join('\n')
}

module.exports = { loadedBinary, noBinaryMessage }
