// Tests that need something this machine may lack (a database server, cargo-zigbuild) are
// skipped loudly, never silently: each spec file calls `requiredOrSkipped` once per need.
// Under `variable`=1 (.ci/run sets these) a missing need is a failing test instead.
'use strict'

// `status`: { ok, why }. Returns `status.ok`.
function requiredOrSkipped(what, status, variable) {
  if (!status.ok) {
    const banner = '#'.repeat(78)
    console.warn(
      `${banner}\n# ${what} SKIPPED: ${String(status.why).split('\n')[0]}\n` +
        `# Set ${variable}=1 to make this a failure.\n${banner}`,
    )
  }
  const required = process.env[variable] === '1'
  test(`${what}: can run here, or may be skipped`, () => {
    expect(status.ok || !required).toBe(true)
  })
  return status.ok
}

module.exports = { requiredOrSkipped }
