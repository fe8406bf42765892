// entries() streams: walking 100,000 keys of about 2 KB (200 MB of values) works in a
// JavaScript heap of 64 MB, so the walk holds one batch at a time, not the store
// (fixtures/entries-walk.js). The embedded engines keep their data outside that heap; the
// paging rules themselves are in the conformance suite, for every backend.
'use strict'
const { runNode, fixture } = require('./lib/children')
const { makeSpec } = require('./lib/stores')

test.each(['memory', 'file', 'sqlite'])(
  '%s: entries({ batch: 100 }) walks 100,000 keys of 2 KB in a 64 MB heap, each once and in order',
  async (kind) => {
    const { spec, cleanup } = makeSpec(kind, 'walk')
    try {
      const r = await runNode(['--max-old-space-size=64', fixture('entries-walk.js'), JSON.stringify(spec), '100000'], {
        timeout: 240000,
      })
      expect(r.stderr).not.toMatch(/heap out of memory/)
      expect(r.messages).toEqual([{ seen: 100000, inOrder: true, peakHeapMB: expect.any(Number) }])
      expect(r.code).toBe(0)
    } finally {
      await cleanup()
    }
  },
  300000,
)
