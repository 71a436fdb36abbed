// Who may run the cluster-wide loops (refresh, collection). The Lease-based elector is src/kube/leader.ts.

export interface Leadership {
  /** True while this replica holds leadership; checked before every cluster-wide write. */
  isLeader(): boolean;
  /** Calls `listener` each time this replica starts or stops leading (absent: leadership never changes). */
  subscribe?(listener: (leading: boolean) => void): void;
}

/** Standalone mode and single-replica deployments: always the leader. */
export class AlwaysLeader implements Leadership {
  isLeader(): boolean {
    return true;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}
