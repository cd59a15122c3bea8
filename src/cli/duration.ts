// Durations on the command line ("500ms", "5s", "10m", "24h", "7d"): one parser,
// so every flag that takes a time reads the same way. A bare number is refused —
// "60" could be seconds or milliseconds, and a wrong guess deletes data early.
import { BlobfsError } from '../errors.ts'

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** "7d" -> 604800000. `flag` names the option in the error; `zero` allows "0s" (e.g. no repair grace). */
export function parseDuration(text: string, flag: string, options: { zero?: boolean } = {}): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i.exec(String(text).trim())
  if (!match) throw new BlobfsError('InvalidArgument', `${flag} '${text}' is not a duration (e.g. 500ms, 30s, 10m, 24h, 7d)`)
  const ms = Math.round(Number(match[1]) * unitMs[match[2]!.toLowerCase()]!)
  if (!(ms > 0 || (options.zero === true && ms === 0)) || !Number.isSafeInteger(ms)) throw new BlobfsError('InvalidArgument', `${flag} '${text}' must be a positive duration`)
  return ms
}

/** 604800000 -> "7d" (the largest unit that divides it), for messages and status. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= unitMs[unit]! && ms % unitMs[unit]! === 0) return `${ms / unitMs[unit]!}${unit}`
  }
  return `${ms}ms`
}
