'use strict'
// The install path of users: `npm pack`, then `npm install ./reshuffle-datastore-*.tgz` into an
// empty project builds the addon from source with the local Rust toolchain, downloads nothing,
// leaves no build folder inside node_modules, and the package works with require and import.
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.resolve(__dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

describe('npm pack + npm install from the tarball', () => {
  let dir
  let app
  beforeAll(
    () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rd-pack-'))
      app = path.join(dir, 'app')
      fs.mkdirSync(app)
      const out = execFileSync(npm, ['pack', '--pack-destination', dir, '--json'], { cwd: root, encoding: 'utf8' })
      const [{ filename }] = JSON.parse(out)
      execFileSync(npm, ['init', '-y'], { cwd: app, stdio: 'ignore' })
      // A kept target folder makes reruns incremental; the install script leaves it alone.
      const env = { ...process.env, CARGO_TARGET_DIR: path.join(root, 'target', 'pack-test') }
      execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', path.join(dir, filename)], {
        cwd: app,
        env,
        stdio: 'inherit',
      })
    },
    15 * 60 * 1000,
  )

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test('the tarball holds sources and the generated loader, no binary and no build folder', () => {
    const pkg = path.join(app, 'node_modules', 'reshuffle-datastore')
    for (const f of [
      'index.js',
      'index.d.ts',
      'binding.js',
      'binding.d.ts',
      'Cargo.toml',
      'Cargo.lock',
      'build.rs',
      'src/lib.rs',
    ]) {
      expect(fs.existsSync(path.join(pkg, f))).toBe(true)
    }
    expect(fs.existsSync(path.join(pkg, 'target'))).toBe(false)
    const built = fs.readdirSync(pkg).filter((f) => f.endsWith('.node'))
    expect(built).toHaveLength(1)
    expect(fs.existsSync(path.join(app, 'node_modules', '@napi-rs'))).toBe(false)
  })

  test('works with require', () => {
    const script = `
      const { MemoryStoreAdapter, PersistentStore } = require('reshuffle-datastore')
      ;(async () => {
        const s = new PersistentStore(new MemoryStoreAdapter(), 'p/')
        await s.update('n', (v = 0) => v + 1)
        console.log(JSON.stringify([await s.get('n'), await s.list()]))
        await s.close()
      })()`
    const out = execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual([1, ['p/n']])
  })

  test('works with import', () => {
    fs.writeFileSync(
      path.join(app, 'use.mjs'),
      `import { MemoryStoreAdapter } from 'reshuffle-datastore'
       import datastore from 'reshuffle-datastore'
       const s = new MemoryStoreAdapter()
       await s.set('k', { ok: true })
       console.log(JSON.stringify([await s.get('k'), typeof datastore.PersistentStore]))
       await s.close()`,
    )
    const out = execFileSync(process.execPath, ['use.mjs'], { cwd: app, encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual([{ ok: true }, 'function'])
  })
})
