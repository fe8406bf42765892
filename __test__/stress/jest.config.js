// npm run test:stress: the long versions of the stress suite (crash loops of 100 kills per
// backend, a thousand and more checked histories, 1,000,000-operation loads). The fast versions
// run in npm test (__test__/stress-fast.spec.js, __test__/stress-bad-input.spec.js).
'use strict'
const path = require('path')

module.exports = {
  rootDir: path.resolve(__dirname, '../..'),
  testMatch: ['<rootDir>/__test__/stress/**/*.spec.js'],
  testTimeout: 60 * 60 * 1000,
  maxWorkers: 1,
}
