// The command line (yargs): one module per command under src/cli/commands/, each
// with --help and examples. Errors map to exit statuses in one table (exit.ts).
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { commands } from './commands/index.ts'

// `blobfs ls | head`: a reader that goes away is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

await yargs(hideBin(process.argv))
  .scriptName('blobfs')
  .command(commands)
  .demandCommand(1, 'name a command; `blobfs --help` lists them')
  .strict()
  .help()
  .alias('h', 'help')
  .epilogue('Documentation: docs/ in the blobfs repository.')
  .parseAsync()
