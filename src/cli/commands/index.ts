// The list of commands; each command lives in its own file beside this one.
import type { CommandModule } from 'yargs'
import { bucketCommand } from './bucket.ts'
import { clusterObjectLayer, gatewayCommand } from './gateway.ts'
import { keyCommand } from './key.ts'
import { nodeCommand } from './node.ts'
import { catCommand, cpCommand, lsCommand, rmCommand } from './objects.ts'
import { selftestCommand } from './selftest.ts'
import { statusCommand } from './status.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  bucketCommand,
  catCommand,
  cpCommand,
  gatewayCommand(clusterObjectLayer),
  keyCommand,
  lsCommand,
  nodeCommand,
  rmCommand,
  selftestCommand,
  statusCommand,
]
