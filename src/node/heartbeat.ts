// Keeps the node's row in the catalog alive: registers once (retrying until the
// control plane answers), then heartbeats every interval, and on each beat flushes
// what earlier calls failed to deliver (corrupt chunk reports, the read-only flag).
import type { StepResult, Worker, WorkerDetail } from '../worker.ts'
import type { NodeControlPlane, NodeHeartbeat, NodeRegistration } from './control-plane.ts'

export interface HeartbeatOptions {
  controlPlane: NodeControlPlane
  intervalMs: number
  registration(): Promise<NodeRegistration>
  beat(): Promise<NodeHeartbeat>
  /** Delivers queued reports; throws when the control plane is unreachable. */
  flush(): Promise<void>
}

export class Heartbeat implements Worker {
  readonly name = 'heartbeat'
  private registered = false
  private beats = 0
  private lastBeatMs: number | null = null

  constructor(private readonly options: HeartbeatOptions) {}

  /** Registers the node once; later calls do nothing. */
  async register(): Promise<void> {
    if (this.registered) return
    await this.options.controlPlane.register(await this.options.registration())
    this.registered = true
  }

  async step(): Promise<StepResult> {
    await this.register()
    await this.options.flush()
    await this.options.controlPlane.heartbeat(await this.options.beat())
    this.beats++
    this.lastBeatMs = Date.now()
    return { state: 'idle', delayMs: this.options.intervalMs }
  }

  status(): WorkerDetail {
    return { registered: this.registered, beats: this.beats, lastBeatMs: this.lastBeatMs }
  }
}
