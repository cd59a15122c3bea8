// A slow, obvious GF(2^8) Reed-Solomon in plain TypeScript: the oracle the native
// kernels are checked against. It shares no code and no tables with native/:
// multiplication is shift-and-add, inversion is a search, so a wrong table in C
// cannot hide behind the same wrong table here. Test code only, never shipped.

const fieldPolynomial = 0x11d

export function gfMul(a: number, b: number): number {
  let product = 0
  while (b > 0) {
    if (b & 1) product ^= a
    a <<= 1
    if (a & 0x100) a ^= fieldPolynomial
    b >>= 1
  }
  return product
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse')
  for (let b = 1; b < 256; b++) if (gfMul(a, b) === 1) return b
  throw new Error(`no inverse of ${a}: not a field`)
}

/** (k + m) x k: identity, then row i (k <= i < k + m), column j = 1 / (i xor j). */
export function generatorMatrix(k: number, m: number): number[][] {
  const rows: number[][] = []
  for (let i = 0; i < k + m; i++) {
    rows.push(Array.from({ length: k }, (_, j) => (i < k ? (i === j ? 1 : 0) : gfInv(i ^ j))))
  }
  return rows
}

export function invertMatrix(matrix: number[][]): number[][] {
  const n = matrix.length
  const a = matrix.map((row) => [...row])
  const inv: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)))
  for (let col = 0; col < n; col++) {
    const pivot = a.findIndex((row, r) => r >= col && row[col] !== 0)
    if (pivot < 0) throw new Error('singular matrix')
    ;[a[col], a[pivot]] = [a[pivot]!, a[col]!]
    ;[inv[col], inv[pivot]] = [inv[pivot]!, inv[col]!]
    const scale = gfInv(a[col]![col]!)
    a[col] = a[col]!.map((x) => gfMul(x, scale))
    inv[col] = inv[col]!.map((x) => gfMul(x, scale))
    for (let r = 0; r < n; r++) {
      const factor = a[r]![col]!
      if (r === col || factor === 0) continue
      a[r] = a[r]!.map((x, j) => x ^ gfMul(factor, a[col]![j]!))
      inv[r] = inv[r]!.map((x, j) => x ^ gfMul(factor, inv[col]![j]!))
    }
  }
  return inv
}

/** Row combination: out[i] = sum_j coeffs[j] * inputs[j][i]. */
function combine(coeffs: readonly number[], inputs: readonly Buffer[], lengthBytes: number): Buffer {
  const out = Buffer.alloc(lengthBytes)
  for (let j = 0; j < inputs.length; j++) {
    const c = coeffs[j]!
    if (c === 0) continue
    const input = inputs[j]!
    for (let i = 0; i < lengthBytes; i++) out[i]! ^= gfMul(c, input[i]!)
  }
  return out
}

/** The m parity shards of k data shards. */
export function referenceEncode(k: number, m: number, data: readonly Buffer[]): Buffer[] {
  const generator = generatorMatrix(k, m)
  const lengthBytes = data[0]?.length ?? 0
  return generator.slice(k).map((row) => combine(row, data, lengthBytes))
}

/**
 * All k + m shards rebuilt from the present ones, choosing which k present
 * shards to read with `pick` (default: the last k, unlike the native codec,
 * which reads the first k; any k must do).
 */
export function referenceReconstruct(
  k: number,
  m: number,
  shards: readonly Buffer[],
  present: readonly boolean[],
  pick: (presentIndices: number[]) => number[] = (indices) => indices.slice(-k),
): Buffer[] {
  const generator = generatorMatrix(k, m)
  const chosen = pick(present.flatMap((p, i) => (p ? [i] : [])))
  if (chosen.length !== k) throw new RangeError(`need ${k} present shards, picked ${chosen.length}`)
  const lengthBytes = shards[chosen[0]!]!.length
  const decode = invertMatrix(chosen.map((i) => generator[i]!))
  const inputs = chosen.map((i) => shards[i]!)
  const data = decode.map((row) => combine(row, inputs, lengthBytes))
  return [...data, ...referenceEncode(k, m, data)]
}
