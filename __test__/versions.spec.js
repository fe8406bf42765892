'use strict'
// The napi-rs layout and its versions: one npm/<platform> package per napi target, each with
// the os/cpu/libc npm selects it by, all at the main package's version, which the generated
// loader and the published optional dependencies carry too; `npm version <new>` moves them all
// in one commit (scripts/sync-versions.js).
const { execFileSync, spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { releaseManifest } = require('../scripts/pack-main')
const { manifest, platformOfTriple, prebuiltTargets } = require('../scripts/targets')

const root = path.resolve(__dirname, '..')
const pkg = manifest()
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'))

// @napi-rs/cli's own reading of each target triple (run in Node itself: jest's module loader
// cannot load the CLI's ES module dependencies).
const napiTriples = JSON.parse(
  execFileSync(
    process.execPath,
    ['-e', `console.log(JSON.stringify(${JSON.stringify(pkg.napi.targets)}.map(require('@napi-rs/cli').parseTriple)))`],
    { cwd: root, encoding: 'utf8' },
  ),
)
const parseTriple = (triple) => napiTriples.find((t) => t.triple === triple)

// The files the versions live in, copied into a fresh folder.
function copyOfCheckout() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rd-versions-'))
  for (const f of ['package.json', 'binding.js', 'npm', 'scripts']) {
    fs.cpSync(path.join(root, f), path.join(dir, f), { recursive: true })
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'))
  return dir
}

function loaderVersions(file) {
  return [...fs.readFileSync(file, 'utf8').matchAll(/bindingPackageVersion !== '([^']*)'/g)].map((m) => m[1])
}

test('napi.targets covers linux x64/arm64 gnu and musl, darwin x64/arm64 and win32 x64 msvc', () => {
  expect(pkg.napi.targets).toEqual(
    expect.arrayContaining([
      'x86_64-unknown-linux-gnu',
      'x86_64-unknown-linux-musl',
      'aarch64-unknown-linux-gnu',
      'aarch64-unknown-linux-musl',
      'x86_64-apple-darwin',
      'aarch64-apple-darwin',
      'x86_64-pc-windows-msvc',
    ]),
  )
})

test("the install script's platform names are @napi-rs/cli's", () => {
  for (const triple of pkg.napi.targets) expect(platformOfTriple(triple)).toBe(parseTriple(triple).platformArchABI)
})

test('npm/ holds one package per target, selected by os, cpu and libc, at the main version', () => {
  const targets = prebuiltTargets(pkg)
  expect(fs.readdirSync(path.join(root, 'npm')).sort()).toEqual(targets.map((t) => t.platform).sort())
  for (const t of targets) {
    const triple = parseTriple(t.triple)
    const platformPkg = readJson(path.join(root, 'npm', t.platform, 'package.json'))
    expect(platformPkg).toMatchObject({
      name: t.packageName,
      version: pkg.version,
      os: [triple.platform],
      cpu: [triple.arch],
      main: t.fileName,
      files: [t.fileName],
      license: pkg.license,
      engines: pkg.engines,
    })
    if (triple.platform === 'linux') expect(platformPkg.libc).toEqual([triple.abi === 'musl' ? 'musl' : 'glibc'])
    else expect(platformPkg.libc).toBeUndefined()
  }
})

test('the generated loader checks the platform packages against the main version', () => {
  const versions = loaderVersions(path.join(root, 'binding.js'))
  expect(versions.length).toBeGreaterThan(0)
  expect(new Set(versions)).toEqual(new Set([pkg.version]))
})

test('the published package lists every platform package as an optional dependency at its version', () => {
  expect(pkg.optionalDependencies).toBeUndefined()
  expect(releaseManifest(pkg).optionalDependencies).toEqual(
    Object.fromEntries(pkg.napi.targets.map((t) => [`${pkg.name}-${parseTriple(t).platformArchABI}`, pkg.version])),
  )
})

test("pack-main's package.json is the one `napi pre-publish` writes before the release publishes", () => {
  const dir = copyOfCheckout()
  try {
    // pre-publish checks that every platform package holds its binary; stand-ins will do, as
    // nothing is published (--skip-optional-publish) and nothing is loaded.
    for (const t of prebuiltTargets(pkg)) fs.writeFileSync(path.join(dir, 'npm', t.platform, t.fileName), '')
    const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
    execFileSync(process.execPath, [napi, 'pre-publish', '-t', 'npm', '--no-gh-release', '--skip-optional-publish'], {
      cwd: dir,
      stdio: 'ignore',
    })
    expect(readJson(path.join(dir, 'package.json'))).toEqual(releaseManifest(pkg))
    // npm publish's prepublishOnly check passes there, and refuses the checkout's package.json.
    const check = (d) => spawnSync(process.execPath, [path.join(root, 'scripts', 'check-release-manifest.js'), d])
    expect(check(dir).status).toBe(0)
    expect(check(root).status).toBe(1)
    expect(pkg.scripts.prepublishOnly).toBe('node scripts/check-release-manifest.js')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('sync-versions leaves a checkout in step unchanged, byte for byte', () => {
  const dir = copyOfCheckout()
  try {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'sync-versions.js'), dir], { stdio: 'ignore' })
    for (const f of ['binding.js', ...prebuiltTargets(pkg).map((t) => `npm/${t.platform}/package.json`)]) {
      expect(fs.readFileSync(path.join(dir, f), 'utf8')).toBe(fs.readFileSync(path.join(root, f), 'utf8'))
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('`npm version <new>` moves every version in one commit', () => {
  const dir = copyOfCheckout()
  const git = (...args) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' })
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
  }
  try {
    fs.writeFileSync(path.join(dir, '.gitignore'), 'node_modules\n')
    git('init', '-q')
    git('add', '.')
    execFileSync('git', ['commit', '-q', '-m', 'start'], { cwd: dir, env })
    execFileSync('npm', ['version', '0.9.0-rc.1'], { cwd: dir, env, stdio: 'ignore' })

    const changed = git('show', '--name-only', '--format=%s', 'HEAD').trim().split('\n')
    expect(changed[0]).toBe('0.9.0-rc.1')
    expect(changed.slice(1).filter(Boolean).sort()).toEqual(
      ['binding.js', 'package.json', ...prebuiltTargets(pkg).map((t) => `npm/${t.platform}/package.json`)].sort(),
    )
    expect(git('status', '--porcelain')).toBe('')
    for (const t of prebuiltTargets(pkg)) {
      expect(readJson(path.join(dir, 'npm', t.platform, 'package.json')).version).toBe('0.9.0-rc.1')
    }
    expect(new Set(loaderVersions(path.join(dir, 'binding.js')))).toEqual(new Set(['0.9.0-rc.1']))
    const bumped = readJson(path.join(dir, 'package.json'))
    expect(new Set(Object.values(releaseManifest(bumped).optionalDependencies))).toEqual(new Set(['0.9.0-rc.1']))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
