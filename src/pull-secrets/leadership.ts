// Who may run the cluster-wide loops (refresh, collection). The Lease-based elector is src/kube/leader.ts.

export interface Leadership {
  /** True while this replica holds leadership; checked before every cluster-wide write. */
  isLeader(): boolean;
}

/** Standalone mode and single-replica deployments: always the leader. */
export class AlwaysLeader implements Leadership {
  isLeader(): boolean {
    return true;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}
