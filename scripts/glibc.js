'use strict'
// The glibc a Linux binary needs: the highest `GLIBC_x.y` version it references, read from its
// version-needs section with binutils' readelf (the dynamic loader refuses the binary on any
// older glibc).
const { execFileSync } = require('child_process')

function compareVersions(a, b) {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] || 0) - (y[i] || 0)
    if (d !== 0) return d
  }
  return 0
}

// Every GLIBC_ version `file` needs, e.g. ['2.2.5', '2.3', ..., '2.17'], sorted.
function glibcVersions(file) {
  const out = execFileSync('readelf', ['--version-info', '--wide', file], { encoding: 'utf8' })
  const needs = out.slice(out.indexOf("Version needs section '.gnu.version_r'"))
  const versions = new Set([...needs.matchAll(/Name: GLIBC_([0-9.]+)/g)].map((m) => m[1]))
  return [...versions].sort(compareVersions)
}

// The highest of them, or undefined when the binary references no glibc version.
function highestGlibc(file) {
  const versions = glibcVersions(file)
  return versions[versions.length - 1]
}

module.exports = { compareVersions, glibcVersions, highestGlibc }
