'use strict'
// `npm run example`: four worker processes count together without losing an update, and the
// count survives a restart.
const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const script = path.join(__dirname, '..', 'examples', 'counter.js')

function runExample(cwd) {
  const out = execFileSync(process.execPath, [script, '--sqlite'], { cwd, encoding: 'utf8' })
  return JSON.parse(out.split('\n').find((l) => l.startsWith('{')))
}

test('the example app counts from four processes and keeps the count across runs', () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'rd-example-'))
  try {
    expect(runExample(cwd)).toEqual({ before: 0, after: 1000, lost: 0, workersOk: true })
    expect(runExample(cwd)).toEqual({ before: 1000, after: 2000, lost: 0, workersOk: true })
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true })
  }
}, 120000)
