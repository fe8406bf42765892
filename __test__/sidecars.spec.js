// Sidecar files (lock files, a compaction's temp file) are never opened through a symlink
// planted in their place (README, Semantics: lifecycle): the operation rejects with ERR_DATASTORE_IO naming the
// path, and the link's target is left exactly as it was.
'use strict'
const fs = require('fs')
const os = require('os')
const path = require('path')
const { FileStoreAdapter, SQLStoreAdapter } = require('..')

let dir
let target
const before = 'an unrelated file\n'
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rds-sidecar-'))
  target = path.join(dir, 'victim.txt')
  fs.writeFileSync(target, before)
})
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

async function expectRefused(promise, linkPath) {
  const e = await promise.catch((err) => err)
  expect(e.code).toBe('ERR_DATASTORE_IO')
  expect(e.message).toContain(linkPath)
  expect(e.message).toMatch(/symbolic link/)
  expect(fs.readFileSync(target, 'utf8')).toBe(before)
  expect(fs.statSync(target).size).toBe(before.length)
}

test('FileStoreAdapter: a symlink at <path>.lock', async () => {
  const file = path.join(dir, 'state.json')
  fs.symlinkSync(target, `${file}.lock`)
  const store = new FileStoreAdapter(file)
  await expectRefused(store.set('k', 1), `${file}.lock`)
  await store.close()
})

test("FileStoreAdapter: symlinks at the compaction's temp files", async () => {
  const file = path.join(dir, 'state.json')
  const store = new FileStoreAdapter(file)
  await store.set('k', 1)
  // Temp files are named <path>.tmp-<pid>-<n>, n counting this process's compactions: an
  // attacker can predict them, so plant links at the next thousand.
  const links = Array.from({ length: 1000 }, (_, n) => `${file}.tmp-${process.pid}-${n}`)
  for (const link of links) fs.symlinkSync(target, link)
  await store.set('k', 2)
  const e = await store.compact().catch((err) => err)
  expect(e.code).toBe('ERR_DATASTORE_IO')
  expect(e.message).toMatch(new RegExp(`${file}\\.tmp-${process.pid}-\\d+: is a symbolic link`))
  expect(fs.readFileSync(target, 'utf8')).toBe(before)
  // Nothing was lost; the store works on.
  expect(await store.get('k')).toBe(2)
  for (const link of links) fs.rmSync(link, { force: true })
  await store.compact()
  await store.close()
  expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ k: 2 })
})

test('SQLStoreAdapter (SQLite): a symlink at <db>.reshuffle-lock', async () => {
  const db = path.join(dir, 'state.db')
  fs.symlinkSync(target, `${db}.reshuffle-lock`)
  const store = new SQLStoreAdapter(db)
  await expectRefused(store.set('k', 1), `${db}.reshuffle-lock`)
  await store.close()
})
