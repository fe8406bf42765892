// The package as a consumer's jest suite sees it (README, Errors): the packed tarball installed into
// an empty project, whose own test files (__test__/fixtures/consumer) run under jest in one
// worker, checking what apps write — rejects.toThrow(Error), toBeInstanceOf(DatastoreError),
// rejects.toMatchObject({ code }), toStrictEqual on values — with --detectOpenHandles, which
// must report no handle once the stores are closed. The addon built for this checkout is put
// next to the installed package (the install paths themselves are tested elsewhere).
'use strict'
const { execFileSync, spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.resolve(__dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

let dir
let app
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rd-consumer-'))
  app = path.join(dir, 'app')
  fs.mkdirSync(app)
  const out = execFileSync(npm, ['pack', '--pack-destination', dir, '--json'], { cwd: root, encoding: 'utf8' })
  const [{ filename }] = JSON.parse(out)
  execFileSync(npm, ['init', '-y'], { cwd: app, stdio: 'ignore' })
  execFileSync(npm, ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', path.join(dir, filename)], {
    cwd: app,
    stdio: 'ignore',
  })
  const installed = path.join(app, 'node_modules', 'reshuffle-datastore')
  for (const f of fs.readdirSync(root).filter((f) => f.endsWith('.node'))) {
    fs.copyFileSync(path.join(root, f), path.join(installed, f))
  }
  const tests = path.join(__dirname, 'fixtures', 'consumer')
  for (const f of fs.readdirSync(tests)) fs.copyFileSync(path.join(tests, f), path.join(app, f))
}, 120000)

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

test("a consumer's jest suite passes, in one worker, and finds no open handle of ours", () => {
  const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js')
  const r = spawnSync(process.execPath, [jest, '--runInBand', '--detectOpenHandles', '--ci'], {
    cwd: app,
    encoding: 'utf8',
    timeout: 120000,
  })
  const output = r.stdout + r.stderr
  expect(output).toMatch(/Tests:\s+5 passed, 5 total/)
  expect(output).not.toMatch(/open handle/i)
  expect(output).not.toMatch(/reshuffle-datastore/)
  expect(r.status).toBe(0)
})
