/**
 * The user directory: external string ids ↔ dense uint32 uids. Every bitmap holds uids, so this
 * is the only place external ids live in memory. Pure: the store persists it, this only indexes.
 */
export class UserDirectory {
  private readonly uidById = new Map<string, number>();
  private readonly idByUid: (string | undefined)[] = [];
  private count = 0;

  /** How many users are known. */
  get size(): number {
    return this.count;
  }

  /** The uid of `externalId`, or undefined when the user has never been seen. */
  lookup(externalId: string): number | undefined {
    return this.uidById.get(externalId);
  }

  /** The external id of `uid`, or undefined for a uid never assigned. */
  externalId(uid: number): string | undefined {
    return this.idByUid[uid];
  }

  /**
   * Records that `externalId` has `uid`. Idempotent for the same pair; a conflicting pair means
   * the store and memory disagree, which must never be papered over.
   */
  add(uid: number, externalId: string): void {
    const known = this.uidById.get(externalId);
    if (known === uid) return;
    if (known !== undefined || this.idByUid[uid] !== undefined) {
      throw new Error(`user directory conflict: ${JSON.stringify(externalId)} ↔ uid ${uid}`);
    }
    this.uidById.set(externalId, uid);
    this.idByUid[uid] = externalId;
    this.count++;
  }
}
