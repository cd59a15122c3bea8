// The list of commands; each command lives in its own file beside this one.
import type { CommandModule } from 'yargs'
import { mountCommand, umountCommand } from './mount.ts'
import { selftestCommand } from './selftest.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [selftestCommand, mountCommand, umountCommand]
