/**
 * How many WAL transfers at once deliver the most, learnt from the transfers themselves. Where the
 * CPU bounds fetching (a loopback store on 2 cores: GET, TLS, decode and write besides replay), a
 * third transfer only makes each take longer, and every one of them arrives later, the one replay
 * waits for included. Where each connection is bounded by the network (a store far away: a round
 * trip per request, a bandwidth per connection), a transfer takes as long with one more beside it,
 * so one more lane delivers one more segment in the same time.
 *
 * A hill climb on delivered throughput (lanes / seconds per transfer at that many lanes): start at
 * `floor`, try one lane more once the current count has a measurement, keep it while it adds at
 * least MARGINAL_SHARE of what each lane delivers on average, step back otherwise. Pure (times are passed in),
 * so tests check the decisions without clocks.
 */

/**
 * The share of what one lane delivers on average that one more lane must add to be kept: about
 * none where the CPU is shared out again, about all of it where each connection has its own bound.
 */
const MARGINAL_SHARE = 0.5;
/** Weight of the newest transfer in the running estimate per lane count. */
const NEWEST = 0.5;

export class LaneGauge {
  private current: number;
  /** Milliseconds one transfer took, by the transfers at once when it started (running estimate). */
  private readonly msByLanes = new Map<number, number>();

  constructor(
    private readonly floor: number,
    private readonly ceiling: number,
  ) {
    this.current = Math.min(floor, ceiling);
  }

  /** Transfers to run at once now. */
  get lanes(): number {
    return this.current;
  }

  /** A transfer that started with `lanes` transfers running (itself included) took `ms`. */
  record(lanes: number, ms: number): void {
    const before = this.msByLanes.get(lanes);
    this.msByLanes.set(lanes, before === undefined ? ms : NEWEST * ms + (1 - NEWEST) * before);
    this.decide();
  }

  private rate(lanes: number): number | undefined {
    const ms = this.msByLanes.get(lanes);
    return ms === undefined ? undefined : lanes / ms;
  }

  private decide(): void {
    const here = this.rate(this.current);
    if (here === undefined) return;
    const fewer = this.rate(this.current - 1);
    if (this.current > this.floor && fewer !== undefined && !this.pays(this.current - 1, fewer, here)) {
      this.current--;
      return;
    }
    if (this.current >= this.ceiling) return;
    const more = this.rate(this.current + 1);
    if (more === undefined || this.pays(this.current, here, more)) this.current++;
  }

  /** Whether lane `lanes + 1` adds at least MARGINAL_SHARE of what each of `lanes` delivers. */
  private pays(lanes: number, rate: number, rateWithOneMore: number): boolean {
    return rateWithOneMore - rate >= (MARGINAL_SHARE * rate) / lanes;
  }
}
