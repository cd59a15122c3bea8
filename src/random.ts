// Seeded pseudo-random numbers (mulberry32) for fault injection and simulations:
// a failure found with seed S replays exactly with seed S.

export type Random = () => number

export function seededRandom(seed: number): Random {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randomInt(random: Random, minInclusive: number, maxExclusive: number): number {
  return minInclusive + Math.floor(random() * (maxExclusive - minInclusive))
}
