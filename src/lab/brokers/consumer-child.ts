// A consumer that takes one message and never acknowledges it: the redelivery scenario
// starts it as a process of its own and kills it with SIGKILL once it holds the message,
// as a worker that crashes mid-job. Talks to its parent over IPC: {ready}, then {took}.
// The broker's address comes in the environment (LADDER_BROKER_ADDRESS: it may hold a
// password), the candidate's name and the queue settings on the command line.
import type { QueueSettings } from './candidate.ts';
import { candidateNamed } from './candidates.ts';

const [name, settingsJson] = process.argv.slice(2);
const address = process.env.LADDER_BROKER_ADDRESS;
if (!name || !settingsJson || !address || !process.send) {
  console.error('usage: (from the broker comparison) consumer-child <candidate> <settings JSON>, LADDER_BROKER_ADDRESS set, with an IPC channel');
  process.exit(2);
}
const send = (m: object) => process.send!(m);
const client = await candidateNamed(name).client(address, JSON.parse(settingsJson) as QueueSettings);
await client.consume(1, (d) => {
  send({ took: d.seq, attempt: d.attempt });
  return new Promise(() => undefined); // holds the message until the parent kills us
});
send({ ready: true });
