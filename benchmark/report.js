'use strict'
// Renders benchmark results as a Markdown table (for the README) and an SVG bar chart of the
// ratios against each plan's matching peer.

function renderMarkdown(header, results, { fmt, ratio, costVsFloor }) {
  const lines = []
  const versions = Object.entries(header.versions)
    .filter(([, v]) => v)
    .map(([n, v]) => `${n} ${v}`)
    .join(', ')
  lines.push(`Measured ${header.date} on ${header.cpu}, Node ${header.node}; peers: ${versions}.`)
  lines.push(
    'Medians of interleaved rounds; "vs" is ours against the first peer (> 1× = better); "vs floor" is our cost as a multiple of the floor\'s (a JS `Map` of JSON text, the fastest a copying store can be; for Redis, raw ioredis GET/SET; < 1× = faster than it), with the floor\'s own figure and the target in parentheses; ✗ marks a failed correctness check.',
  )
  let plan = null
  let peers = []
  for (const r of results) {
    if (r.plan !== plan) {
      plan = r.plan
      peers = r.peers
      lines.push('', `**${r.title}**`, '')
      lines.push(`| workload | ours | ${peers.join(' | ')} | vs ${peers[0] || '-'} | vs floor |`)
      lines.push(`|---|---|${peers.map(() => '---|').join('')}---|---|`)
    }
    // A peer that sat a row out (see the plan's `without`) shows n/a.
    const cell = (n) => (r.subjects[n] ? `${fmt(r.subjects[n])}${r.subjects[n].ok ? '' : ' ✗'}` : 'n/a')
    const x = r.peers.length ? ratio(r, r.peers[0]) : NaN
    const c = costVsFloor(r)
    const floor = Number.isFinite(c) ? `${c.toFixed(2)}× (${fmt(r.subjects[r.floor])}; ≤ ${r.target}×)` : ''
    lines.push(
      `| ${r.row} | ${cell(r.ours)} | ${peers.map(cell).join(' | ')} | ${Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a'} | ${floor} |`,
    )
  }
  return lines.join('\n')
}

function renderSvg(header, results, { ratio }) {
  const rows = results.filter((r) => r.peers.length && Number.isFinite(ratio(r, r.peers[0])))
  const rowH = 22
  const left = 480
  const width = 1040
  const top = 40
  const height = top + rows.length * rowH + 40
  // log10 scale from 0.1× to 1000×
  const minL = -1
  const maxL = 3
  const x = (v) => left + ((Math.log10(Math.min(Math.max(v, 0.1), 1000)) - minL) / (maxL - minL)) * (width - left - 20)
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const out = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
  )
  out.push(`<rect width="100%" height="100%" fill="white"/>`)
  out.push(
    `<text x="10" y="20" font-size="14" font-weight="bold">reshuffle-datastore vs the matching peer (log scale; right of 1× = faster) — ${esc(header.date)}</text>`,
  )
  for (const t of [0.1, 1, 10, 100, 1000]) {
    out.push(
      `<line x1="${x(t)}" y1="${top - 8}" x2="${x(t)}" y2="${height - 30}" stroke="${t === 1 ? '#444' : '#ddd'}"/>`,
    )
    out.push(`<text x="${x(t)}" y="${height - 14}" text-anchor="middle">${t}×</text>`)
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH
    const v = ratio(r, r.peers[0])
    const x0 = x(1)
    const x1 = x(v)
    out.push(
      `<text x="${left - 8}" y="${y + 14}" text-anchor="end">${esc(`${r.title}: ${r.row} (vs ${r.peers[0]})`)}</text>`,
    )
    out.push(
      `<rect x="${Math.min(x0, x1)}" y="${y + 3}" width="${Math.max(1, Math.abs(x1 - x0))}" height="${rowH - 8}" fill="${v >= 1 ? '#2a9d8f' : '#e76f51'}"/>`,
    )
    out.push(`<text x="${Math.max(x0, x1) + 4}" y="${y + 14}">${v.toFixed(2)}×</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

module.exports = { renderMarkdown, renderSvg }
