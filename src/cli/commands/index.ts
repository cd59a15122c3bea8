// The list of commands; each command lives in its own file beside this one.
import type { CommandModule } from 'yargs'
import { openObjectLayer } from '../cluster.ts'
import { bucketCommand } from './bucket.ts'
import { catalogCommand } from './catalog.ts'
import { gatewayCommand } from './gateway.ts'
import { keyCommand } from './key.ts'
import { mountCommand, umountCommand } from './mount.ts'
import { nodeCommand } from './node.ts'
import { repairCommand } from './repair.ts'
import { catCommand, cpCommand, lsCommand, rmCommand } from './objects.ts'
import { selftestCommand } from './selftest.ts'
import { statusCommand } from './status.ts'
import { upCommand } from './up.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  bucketCommand,
  catalogCommand,
  catCommand,
  cpCommand,
  gatewayCommand(openObjectLayer),
  keyCommand,
  lsCommand,
  mountCommand,
  nodeCommand,
  repairCommand,
  rmCommand,
  selftestCommand,
  statusCommand,
  umountCommand,
  upCommand,
]
