// Shared helpers for the codec tests: deterministic bytes, shard sets, and the
// erasure patterns to try.

/** The byte generator native/tools/isal-vectors.c uses for its known answers. */
export function lcgBytes(lengthBytes: number, state: { value: number }): Buffer {
  const out = Buffer.alloc(lengthBytes)
  for (let i = 0; i < lengthBytes; i++) {
    state.value = (Math.imul(state.value, 1103515245) + 12345) >>> 0
    out[i] = (state.value >>> 16) & 0xff
  }
  return out
}

/** k data shards of `lengthBytes` from `seed`, then m zeroed parity shards. */
export function makeShards(k: number, m: number, lengthBytes: number, seed: number): Buffer[] {
  const state = { value: seed >>> 0 }
  return [
    ...Array.from({ length: k }, () => lcgBytes(lengthBytes, state)),
    ...Array.from({ length: m }, () => Buffer.alloc(lengthBytes)),
  ]
}

export function copyShards(shards: readonly Buffer[]): Buffer[] {
  return shards.map((s) => Buffer.from(s))
}

function binomial(n: number, r: number): number {
  let result = 1
  for (let i = 1; i <= r; i++) result = (result * (n - r + i)) / i
  return Math.round(result)
}

function* combinations(n: number, r: number, start = 0, prefix: number[] = []): Generator<number[]> {
  if (prefix.length === r) {
    yield [...prefix]
    return
  }
  for (let i = start; i <= n - (r - prefix.length); i++) {
    prefix.push(i)
    yield* combinations(n, r, i + 1, prefix)
    prefix.pop()
  }
}

/**
 * Erasure patterns (sets of missing shard indices) of 1..m shards out of n: all
 * of them when there are at most `limit`, otherwise `limit` drawn at random
 * (always including the m-erasure patterns "first m" and "last m").
 */
export function erasurePatterns(n: number, m: number, limit: number, random: () => number): number[][] {
  let total = 0
  for (let e = 1; e <= m; e++) total += binomial(n, e)
  if (total <= limit) {
    const all: number[][] = []
    for (let e = 1; e <= m; e++) for (const c of combinations(n, e)) all.push(c)
    return all
  }
  const patterns: number[][] = [
    Array.from({ length: m }, (_, i) => i),
    Array.from({ length: m }, (_, i) => n - m + i),
  ]
  while (patterns.length < limit) {
    const size = 1 + Math.floor(random() * m)
    const chosen = new Set<number>()
    while (chosen.size < size) chosen.add(Math.floor(random() * n))
    patterns.push([...chosen].sort((a, b) => a - b))
  }
  return patterns
}

/** A small seeded PRNG (mulberry32), so a failing case can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
