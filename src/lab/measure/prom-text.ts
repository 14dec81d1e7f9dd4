// Reading Prometheus text exposition (what /metrics answers), for benchmarks and tests.

/**
 * Sums every series of metric `name` in one or more /metrics texts (several web servers),
 * keeping those whose label set contains `labels` as a substring (e.g. 'role="replica"').
 */
export function sumSeries(texts: string | readonly string[], name: string, labels = ''): number {
  let total = 0;
  for (const text of typeof texts === 'string' ? [texts] : texts) {
    for (const line of text.split('\n')) {
      if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(labels)) {
        total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return total;
}
