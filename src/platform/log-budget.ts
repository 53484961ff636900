/**
 * At most `lines` log lines per `windowMs` for something a client can make happen at will (a
 * malformed request): a flood of them writes `lines` lines a window, and the next line written
 * says how many were left out before it, so nothing is lost but the detail.
 */
export class LogBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  private left = 0;

  constructor(
    private readonly lines: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Null: write no line now. Else a line may be written, with how many were left out since the last one. */
  take(): { leftOut: number } | null {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.lines) {
      this.left += 1;
      return null;
    }
    this.used += 1;
    const leftOut = this.left;
    this.left = 0;
    return { leftOut };
  }
}
