// The `dinots` command. Each subcommand lives in cli/commands/<name>.ts and exports `register(program)`.
import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

export interface CommandModule {
  register(program: Command): void;
}

const program = new Command();
program
  .name('dinots')
  .description('DINO and DINOv2 self-supervised Vision Transformers in TypeScript')
  .option('--backend <name>', 'tensor backend: native, wasm, cpu or auto (env DINOTS_BACKEND)', 'auto')
  .option('--precision <p>', 'matmul precision: f32, or bf16 mixed precision on the native backend (AMX/AVX512-BF16 CPUs; env DINOTS_PRECISION)')
  .showHelpAfterError()
  // Commands start their backend themselves; the precision travels through the environment to initBackend.
  .hook('preAction', (cmd) => {
    const p = cmd.opts().precision as string | undefined;
    if (p) process.env.DINOTS_PRECISION = p;
  });

const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
for (const f of readdirSync(dir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort()) {
  const mod = (await import(pathToFileURL(join(dir, f)).href)) as CommandModule;
  mod.register(program);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.stderr.write(`dinots: ${(e as Error).message}\n`);
  if (process.env.DINOTS_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
}
