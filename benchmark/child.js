'use strict'
// One of the processes of the multiProcess workload: opens the subject on the shared context
// and runs N concurrent +1 updates of 'counter'.
const { subjects, checkServers } = require('./subjects')

async function main() {
  const [name, dir, table, n] = process.argv.slice(2)
  await checkServers()
  const store = await subjects[name].open({ dir, name: table, child: true })
  await Promise.all(
    Array.from({ length: Number(n) }, () =>
      store.update('counter', async (v = 0) => {
        await null
        return v + 1
      }),
    ),
  )
  await store.close()
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e)
  process.exit(1)
})
