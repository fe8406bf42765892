'use strict'
// npm test's jest settings. Most suites spend their time waiting on child processes, servers
// and timers rather than computing, so at least two run at once even on a two-core machine
// (jest's default there, one fewer than the cores, would run them one at a time).
const os = require('os')

// os.availableParallelism is Node ≥ 18.14; the suites also run on Node 18.0 (package.json engines).
const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length

module.exports = {
  testMatch: ['<rootDir>/__test__/**/*.spec.js'],
  testTimeout: 60000,
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__test__/stress/'],
  maxWorkers: Math.max(2, cores - 1),
}
