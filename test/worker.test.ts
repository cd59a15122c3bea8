import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import { Throttle, WorkerRunner, type StepResult, type Worker } from '../src/worker.ts'

test('a throttle paces work to its byte rate and does not bank idle time', () => {
  let now = 0
  const throttle = new Throttle(1000, () => now)
  assert.equal(throttle.delayFor(500), 500)
  assert.equal(throttle.delayFor(500), 1000) // work done before the first wait ended
  now = 1000
  assert.equal(throttle.delayFor(250), 250)
  now = 10_000 // long idle: no burst allowance
  assert.equal(throttle.delayFor(1000), 1000)
})

test('the runner steps a worker, sleeps when idle, wakes on demand, counts errors and stops', async () => {
  const steps: string[] = []
  let wokenStep: () => void = () => {}
  const wokenAgain = new Promise<void>((resolve) => (wokenStep = resolve))
  const worker: Worker = {
    name: 'test',
    async step(): Promise<StepResult> {
      steps.push('step')
      if (steps.length === 1) return { state: 'busy' }
      if (steps.length === 2) throw new Error('transient')
      if (steps.length === 4) wokenStep()
      return { state: 'idle', delayMs: 3_600_000 }
    },
    status: () => ({ steps: steps.length }),
  }
  const runner = new WorkerRunner(worker, pino({ level: 'silent' }))
  runner.start()
  while (steps.length < 3) await new Promise((resolve) => setImmediate(resolve))
  // Now idle for an hour: only wake() brings the fourth step.
  runner.wake()
  await wokenAgain
  await runner.stop()
  const status = runner.status()
  assert.equal(status.state, 'stopped')
  assert.equal(status.errors, 1)
  assert.equal(status.lastError, 'transient')
  assert.equal(status.detail.steps, 4)
})
