// Every scenario `ladder bench` runs, in the order `ladder bench --help` lists them. A new
// scenario is one file in this folder that declares itself (name, one-line summary, the
// flags it reads, its run function; see scaffold.ts) and one line here.
import { autoscaleScenario } from './autoscale.ts';
import { cacheScenario } from './cache.ts';
import { edgeScenario } from './edge.ts';
import { enginesScenario } from './engines.ts';
import { queueScenario } from './queue.ts';
import { redirectScenario } from './redirect.ts';
import { replicasScenario } from './replicas.ts';
import { scalingScenario } from './scaling.ts';
import type { Scenario } from './scaffold.ts';
import { sessionScenario } from './session.ts';
import { shardsScenario } from './shards.ts';

export const SCENARIOS: readonly Scenario[] = Object.freeze([
  redirectScenario,
  enginesScenario,
  sessionScenario,
  cacheScenario,
  scalingScenario,
  replicasScenario,
  edgeScenario,
  autoscaleScenario,
  queueScenario,
  shardsScenario,
]);

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
