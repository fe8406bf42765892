'use strict'
// npm test's jest settings. Most suites spend their time waiting on child processes, servers
// and timers rather than computing, so at least two run at once even on a two-core machine
// (jest's default there, one fewer than the cores, would run them one at a time).
const os = require('os')

module.exports = {
  testMatch: ['<rootDir>/__test__/**/*.spec.js'],
  testTimeout: 60000,
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__test__/stress/'],
  maxWorkers: Math.max(2, os.availableParallelism() - 1),
}
