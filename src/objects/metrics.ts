// Prometheus metrics of the object layer a front end (gateway, FUSE daemon) runs in
// its own process, registered on that front end's registry.
import { Gauge, type Registry } from 'prom-client'
import type { HedgeStats } from './hedge.ts'

/** Registers the object layer's read metrics, when the layer keeps them (the cluster's does; test doubles need not). */
export function registerObjectLayerMetrics(registry: Registry, objects: object): void {
  const source = objects as { hedgeStats?: () => HedgeStats }
  if (typeof source.hedgeStats !== 'function') return
  const stats = () => source.hedgeStats!()
  new Gauge({
    name: 'blobfs_object_read_hedges',
    help: 'chunk reads since start that took longer than recent reads of their size: hedged (piece also rebuilt from other chunks) or over_budget (waited for the fixed delay)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const { hedged, overBudget } = stats()
      this.set({ result: 'hedged' }, hedged)
      this.set({ result: 'over_budget' }, overBudget)
    },
  })
}
