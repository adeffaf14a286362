// Benchmark dispatcher: `npm run bench -- <name> [options]`. One file per benchmark in bench/.
const BENCHES: Record<string, () => Promise<{ main(args: string[]): Promise<void> }>> = {
  'train-step': () => import('./train_step.js'),
  'dino-step': () => import('./dino_step.js'),
  curation: () => import('./curation.js'),
  'extract-knn': () => import('./extract_knn.js'),
  multicrop: () => import('./multicrop.js'),
  'matmul-floor': () => import('./matmul_floor.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? BENCHES[name] : undefined;
if (!load) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join(' | ')}> [options]${name ? ` (unknown benchmark '${name}')` : ''}`);
  process.exit(1);
}
await (await load()).main(args);
