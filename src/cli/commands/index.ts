// The list of commands; each command lives in its own file beside this one.
import type { CommandModule } from 'yargs'
import { nodeCommand } from './node.ts'
import { selftestCommand } from './selftest.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  nodeCommand,
  selftestCommand,
]
