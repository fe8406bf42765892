'use strict'
// The install paths of users, each from tarballs into an empty project with `npm install
// --offline` (installing never downloads anything):
// 1. Prebuilt: `npm run pack:prebuilt` builds this machine's binary (here in the prebuilt-check
//    profile: a release without LTO, see Cargo.toml) and packs the
//    main package and its platform package (reshuffle-datastore-linux-x64-gnu here). Both install
//    with neither cargo nor rustc on PATH, the install script leaves them alone, and the binary
//    that loads is the platform package's. It needs cargo-zigbuild and zig on linux-gnu (for
//    glibc 2.17); without them these tests are skipped loudly, or fail when
//    RESHUFFLE_DATASTORE_REQUIRE_PREBUILT=1 (CI sets it).
// 2. Neither a binary nor the toolchain: the install fails with one message that names the
//    platform and the ways out.
// 3. Source build: the main tarball alone, with cargo on PATH: the install script builds the addon
//    next to index.js.
// The small app (fixtures/install-app.js) runs set/get/update on memory, file, SQLite and
// PostgreSQL (PG* settings; a missing server skips that backend loudly, or fails when
// RESHUFFLE_DATASTORE_REQUIRE_PG=1).
const { execFileSync, spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { applyDefaults, serverReachable } = require('./lib/postgres-env')
const { requiredOrSkipped } = require('./lib/servers')
const { envWithoutRust, newProject, npmInstall, runApp, runs } = require('./fixtures/install-project')
const { highestGlibc, compareVersions } = require('../scripts/glibc')
const { packMain } = require('../scripts/pack-main')
const { hostPlatform, manifest, prebuiltTargets } = require('../scripts/targets')

const root = path.resolve(__dirname, '..')
const pkg = manifest()
const platform = hostPlatform()
const target = prebuiltTargets(pkg).find((t) => t.platform === platform)

applyDefaults()
const pgServer = serverReachable()
requiredOrSkipped('install tests, the PostgreSQL part of the app', pgServer, 'RESHUFFLE_DATASTORE_REQUIRE_PG')
const pgTables = []
// The backends of one run of the app, each on fresh storage.
function backends() {
  const table = `rds_install_${process.pid.toString(36)}_${Date.now().toString(36)}_${pgTables.length}`
  if (!pgServer.ok) return ['memory', 'file', 'sqlite']
  pgTables.push(table)
  return ['memory', 'file', 'sqlite', `postgres:${table}`]
}

// The results the app prints for each backend it ran.
function expectAppResults(results) {
  expect(Object.keys(results)).toEqual(['memory', 'file', 'sqlite', ...(pgServer.ok ? ['postgres'] : [])])
  for (const r of Object.values(results)) {
    expect(r).toEqual({
      set: { offset: 10 },
      got: { offset: 10 },
      first: [null, ['a']],
      second: [['a'], ['a', 'b']],
      missing: 'undefined',
    })
  }
}

afterAll(async () => {
  if (pgTables.length === 0) return
  const { Client } = require('pg')
  const client = new Client()
  await client.connect()
  await client.query(`DROP TABLE IF EXISTS ${pgTables.join(', ')}`)
  await client.end()
})

const folders = []
function tempFolder(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  folders.push(dir)
  return dir
}
function project(prefix) {
  const dir = newProject(prefix)
  folders.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true })
})

// --- 1. prebuilt ---------------------------------------------------------------------------------

const needsZig = process.platform === 'linux' && platform.endsWith('-gnu')
const canPack = !!target && (!needsZig || runs('cargo-zigbuild'))
requiredOrSkipped(
  'prebuilt install tests',
  {
    ok: canPack,
    why: target
      ? 'cargo-zigbuild is not installed (pip install cargo-zigbuild ziglang).'
      : `${platform} is not one of napi.targets.`,
  },
  'RESHUFFLE_DATASTORE_REQUIRE_PREBUILT',
)

;(canPack ? describe : describe.skip)('prebuilt: npm run pack:prebuilt, installed without Rust', () => {
  let tarballs
  let app
  let env
  let install

  beforeAll(
    () => {
      // The `prebuilt-check` profile: linked and packed as a release is, compiled unoptimised
      // (see Cargo.toml); what is tested here is the packaging and the install path.
      const out = execFileSync(process.execPath, [path.join(root, 'scripts', 'pack-prebuilt.js')], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, RESHUFFLE_DATASTORE_PREBUILT_PROFILE: 'prebuilt-check' },
      })
      tarballs = out.trim().split('\n').slice(-2)
      app = project('rd-prebuilt-')
      env = envWithoutRust(tempFolder('rd-norust-'))
      const started = Date.now()
      install = npmInstall(app, tarballs, { env, args: ['--foreground-scripts'] })
      console.log(`prebuilt install: ${Date.now() - started} ms`)
    },
    20 * 60 * 1000,
  )

  test('pack:prebuilt wrote the main package and this platform package into dist/', () => {
    expect(tarballs).toEqual([
      path.join(root, 'dist', `${pkg.name}-${pkg.version}.tgz`),
      path.join(root, 'dist', `${target.packageName}-${pkg.version}.tgz`),
    ])
  })

  test('the install ran with neither cargo nor rustc on PATH, and succeeded', () => {
    expect(runs('cargo', env)).toBe(false)
    expect(runs('rustc', env)).toBe(false)
    expect(runs('npm', env)).toBe(true)
    expect(install.stderr).not.toMatch(/npm error/)
    expect(install.status).toBe(0)
  })

  test('the install script found the platform package and built nothing', () => {
    const main = path.join(app, 'node_modules', pkg.name)
    expect(install.stdout).toContain(`reshuffle-datastore: using ../${target.packageName}/${target.fileName}`)
    expect(fs.readdirSync(main).filter((f) => f.endsWith('.node'))).toEqual([])
    expect(fs.existsSync(path.join(main, 'target'))).toBe(false)
  })

  test('the main package depends on every platform package at its own version', () => {
    const installed = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', pkg.name, 'package.json'), 'utf8'))
    expect(installed.optionalDependencies).toEqual(
      Object.fromEntries(prebuiltTargets(pkg).map((t) => [t.packageName, pkg.version])),
    )
    const platformPkg = path.join(app, 'node_modules', target.packageName, 'package.json')
    expect(JSON.parse(fs.readFileSync(platformPkg, 'utf8')).version).toBe(pkg.version)
  })

  test('the app works on every backend, with the platform package binary', () => {
    const { results, native } = runApp(app, backends(), env)
    expectAppResults(results)
    expect(native).toEqual([path.join(fs.realpathSync(app), 'node_modules', target.packageName, target.fileName)])
  })

  ;(needsZig ? test : test.skip)('the linux-gnu binary needs glibc 2.17 at most', () => {
    const binary = path.join(app, 'node_modules', target.packageName, target.fileName)
    const needs = highestGlibc(binary)
    expect(needs).toMatch(/^2\.\d+/)
    expect(compareVersions(needs, '2.17')).toBeLessThanOrEqual(0)
  })

  test('works with import too', () => {
    fs.writeFileSync(
      path.join(app, 'use.mjs'),
      `import { MemoryStoreAdapter } from 'reshuffle-datastore'
       import datastore from 'reshuffle-datastore'
       const s = new MemoryStoreAdapter()
       await s.set('k', { ok: true })
       console.log(JSON.stringify([await s.get('k'), typeof datastore.PersistentStore]))
       await s.close()`,
    )
    const out = execFileSync(process.execPath, ['use.mjs'], { cwd: app, env, encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual([{ ok: true }, 'function'])
  })

  test('with install scripts denied (npm 11 allowScripts) and strict, the install still works', () => {
    const denied = project('rd-denied-')
    const manifestPath = path.join(denied, 'package.json')
    const appPkg = JSON.parse(fs.readFileSync(manifestPath, 'utf8'))
    appPkg.allowScripts = { [`file:${tarballs[0]}`]: false }
    fs.writeFileSync(manifestPath, JSON.stringify(appPkg, null, 2))
    const r = npmInstall(denied, tarballs, { env, args: ['--strict-allow-scripts', '--foreground-scripts'] })
    expect(r.stderr).not.toMatch(/npm error/)
    expect(r.status).toBe(0)
    expect(r.stdout).not.toContain('reshuffle-datastore: using')
    const { results } = runApp(denied, ['memory', 'sqlite'], env)
    expect(Object.keys(results)).toEqual(['memory', 'sqlite'])
  })
})

// --- 2. neither a binary nor the toolchain ----------------------------------------------------

describe('no binary and no Rust', () => {
  let tarball
  beforeAll(() => {
    tarball = packMain(tempFolder('rd-main-'))
  })

  test('the install fails with one message naming the platform and the ways out', () => {
    const app = project('rd-nothing-')
    const env = envWithoutRust(tempFolder('rd-norust-'))
    const r = npmInstall(app, [tarball], { env })
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(`reshuffle-datastore: no native binary for this platform (${platform}`)
    expect(r.stderr).toContain('https://rustup.rs')
    expect(r.stderr).toContain('npm rebuild reshuffle-datastore')
    if (target) expect(r.stderr).toContain(`${target.packageName}@${pkg.version}`)
  })

  test('installed with --ignore-scripts and no platform package, require says what to do', () => {
    const app = project('rd-ignored-')
    const r = npmInstall(app, [tarball], { args: ['--ignore-scripts'] })
    expect(r.status).toBe(0)
    const script = `
      try { require('reshuffle-datastore') } catch (e) { console.log(JSON.stringify([e.code, e.message])) }`
    const [code, message] = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' }))
    expect(code).toBe('ERR_DATASTORE_NOT_BUILT')
    expect(message).toContain(`(${process.platform}-${process.arch})`)
    expect(message).toContain('npm rebuild reshuffle-datastore')
  })

  test('on a platform without a prebuilt binary, the message lists the ones that have one', () => {
    const script = `
      Object.defineProperty(process, 'arch', { value: 's390x' })
      console.log(require(${JSON.stringify(path.join(root, 'scripts', 'native-binary.js'))}).noBinaryMessage())`
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })
    expect(out).toContain(`no native binary for this platform (${process.platform}-s390x`)
    expect(out).toContain(
      `Prebuilt binaries exist for: ${prebuiltTargets(pkg)
        .map((t) => t.platform)
        .join(', ')}.`,
    )
    expect(out).toContain('use one of the platforms with a prebuilt binary')
    expect(out).toContain('npm rebuild reshuffle-datastore')
  })
})

// --- 3. source build ------------------------------------------------------------------------------

describe('source build: the main tarball alone, with cargo on PATH', () => {
  let app
  let install
  beforeAll(
    () => {
      const tarball = packMain(tempFolder('rd-main-'))
      app = project('rd-source-')
      // The install script's build, in the dev profile and the checkout's target folder: it
      // shares the dependencies `npm install` compiled there (the optimised release binary is
      // pack:prebuilt's, compiled once per test run); this test is about the install path.
      const env = {
        ...process.env,
        CARGO_TARGET_DIR: path.join(root, 'target'),
        RESHUFFLE_DATASTORE_CARGO_PROFILE: 'dev',
      }
      install = npmInstall(app, [tarball], { env, args: ['--foreground-scripts'] })
      if (install.status !== 0) console.error(install.stdout, install.stderr)
    },
    15 * 60 * 1000,
  )

  test('the install script built the addon next to index.js, and left no build folder', () => {
    expect(install.status).toBe(0)
    const main = path.join(app, 'node_modules', pkg.name)
    for (const f of [
      'index.js',
      'index.d.ts',
      'binding.js',
      'binding.d.ts',
      'Cargo.toml',
      'Cargo.lock',
      '.cargo/config.toml',
      'build.rs',
      'src/lib.rs',
      'crates/core/Cargo.toml',
      'crates/core/src/lib.rs',
    ]) {
      expect(fs.existsSync(path.join(main, f))).toBe(true)
    }
    expect(fs.readdirSync(main).filter((f) => f.endsWith('.node'))).toEqual([`reshuffle-datastore.${platform}.node`])
    expect(fs.existsSync(path.join(main, 'target'))).toBe(false)
    expect(fs.existsSync(path.join(app, 'node_modules', '@napi-rs'))).toBe(false)
    if (target) expect(fs.existsSync(path.join(app, 'node_modules', target.packageName))).toBe(false)
  })

  test('the app works on every backend, with the binary built from source', () => {
    const { results, native } = runApp(app, backends())
    expectAppResults(results)
    expect(native).toEqual([
      path.join(fs.realpathSync(app), 'node_modules', pkg.name, `reshuffle-datastore.${platform}.node`),
    ])
  })
})
