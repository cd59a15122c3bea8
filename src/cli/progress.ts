// Progress bars for long transfers (cli-progress), on stderr so stdout stays clean
// for data (`blobfs cat`) and --json. Off when stderr is not a terminal unless forced.
import { Transform } from 'node:stream'
import cliProgress from 'cli-progress'

export interface Progress {
  /** A pass-through stream that advances the bar by the bytes flowing through it. */
  meter(): Transform
  stop(): void
}

export function progressBar(totalBytes: number, label: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { meter: () => new Transform({ transform: (chunk, _e, done) => done(null, chunk) }), stop: () => {} }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value_h}/{total_h} | {speed} | ETA {eta_formatted}`,
      hideCursor: true,
      formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? humanBytes(value) : String(value)),
    },
    cliProgress.Presets.shades_classic,
  )
  const startedMs = Date.now()
  let done = 0
  bar.start(totalBytes, 0, { value_h: humanBytes(0), total_h: humanBytes(totalBytes), speed: '' })
  return {
    meter: () =>
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          done += chunk.length
          const seconds = Math.max((Date.now() - startedMs) / 1000, 0.001)
          bar.update(done, { value_h: humanBytes(done), total_h: humanBytes(totalBytes), speed: `${humanBytes(done / seconds)}/s` })
          callback(null, chunk)
        },
      }),
    stop: () => bar.stop(),
  }
}

export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}

export interface CountProgress {
  /** Moves the bar to `done` of `total` (the total may grow while work is found). */
  update(done: number, total: number, detail?: string): void
  stop(): void
}

/** A bar over a count of things (repair tasks, stripes), for work whose total is known only roughly. */
export function countBar(label: string, unit: string, enabled = process.stderr.isTTY === true): CountProgress {
  if (!enabled) return { update: () => {}, stop: () => {} }
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {detail}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  )
  let started = false
  return {
    update(done, total, detail = '') {
      if (!started) {
        bar.start(Math.max(total, 1), done, { detail })
        started = true
        return
      }
      bar.setTotal(Math.max(total, 1))
      bar.update(done, { detail })
    },
    stop: () => {
      if (started) bar.stop()
    },
  }
}
