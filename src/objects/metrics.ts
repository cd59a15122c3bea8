// Prometheus metrics of the object layer a front end (gateway, FUSE daemon) runs in
// its own process, registered on that front end's registry.
import { Counter, type Registry } from 'prom-client'
import type { HedgeStats } from './hedge.ts'

/** Registers the object layer's read metrics, when the layer keeps them (the cluster's does; test doubles need not). */
export function registerObjectLayerMetrics(registry: Registry, objects: object): void {
  const source = objects as { hedgeStats?: () => HedgeStats }
  if (typeof source.hedgeStats !== 'function') return
  const stats = () => source.hedgeStats!()
  const reported: HedgeStats = { hedged: 0, overBudget: 0 }
  new Counter({
    name: 'blobfs_object_read_hedges_total',
    help: 'chunk reads slower than recent reads of their size (adaptive hedging): hedged (the piece also rebuilt from other chunks) or over_budget (not hedged then: the budget was spent, so the read waited on, up to the fixed delay)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const now = stats()
      this.inc({ result: 'hedged' }, now.hedged - reported.hedged)
      this.inc({ result: 'over_budget' }, now.overBudget - reported.overBudget)
      Object.assign(reported, now)
    },
  })
}
