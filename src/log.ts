// Structured logging: one JSON line per event (pino), one logger per process with
// a `component` binding per layer. Level comes from configuration, never from
// process.env inside library code.
import { pino, type Logger } from 'pino'

export type { Logger }

let root: Logger = pino({ level: 'info', base: { pid: process.pid } }, pino.destination(2))

export function configureLogging(options: { level?: string; name?: string }): void {
  root = pino(
    { level: options.level ?? 'info', base: { pid: process.pid, ...(options.name ? { name: options.name } : {}) } },
    pino.destination(2),
  )
}

export function logger(component: string): Logger {
  return root.child({ component })
}
