// Zipf(s) popularity over n items: the item of rank k (1-based) has weight 1/k^s. Link
// traffic is this skewed (with s = 1 and 100,000 links the top 1% get about 60% of the
// clicks), and the skew decides how hot indexes and, later, caches run.
// Sampling is a binary search in a precomputed CDF: O(log n) per draw, 8 bytes per item.
export class ZipfSampler {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Zipf needs n >= 1 items, got ${n}`);
    if (!(s >= 0)) throw new RangeError(`Zipf exponent must be >= 0, got ${s}`);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 1; k <= n; k++) {
      sum += 1 / Math.pow(k, s);
      this.cdf[k - 1] = sum;
    }
  }

  /** A rank from 0 (the most popular item) to n - 1; `random` returns [0, 1). */
  next(random: () => number): number {
    const u = random() * this.cdf[this.n - 1]!;
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Share of all draws that go to the `top` most popular items (for the report). */
  share(top: number): number {
    const k = Math.min(Math.max(top, 1), this.n);
    return this.cdf[k - 1]! / this.cdf[this.n - 1]!;
  }
}
