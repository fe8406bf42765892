'use strict'
// The stores a benchmark can open: ours and the peers. A peer whose package is missing reports
// why and is skipped.
const path = require('path')

function tryRequire(name) {
  try {
    return require(name)
  } catch {
    return null
  }
}

const ours = require(path.join(__dirname, '..'))
const reshuffle = tryRequire('reshuffle')

const subjects = {
  memory: {
    available: () => true,
    why: () => '',
    open: async () => new ours.MemoryStoreAdapter(),
    close: (s) => s.close(),
  },
  'reshuffle-memory': {
    available: () => !!reshuffle,
    why: () => 'reshuffle is not installed (npm install)',
    open: async () => new reshuffle.MemoryStoreAdapter(),
    close: async () => {},
  },
}

module.exports = { subjects }
