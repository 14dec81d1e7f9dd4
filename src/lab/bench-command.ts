// Placeholder until the load lab lands in this same change: refuses clearly.
export async function benchCommand(_argv: string[]): Promise<number> {
  process.stderr.write('ladder: bench is being built\n');
  return 1;
}
