// `dinots convert <in> <out>`: between .pth and .safetensors (by the output's extension) and between official and
// HF names. The backbone is written; a file holding only a DINO head is written as that head (official names).
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import {
  fromOfficial,
  loadBackboneWeights,
  readCheckpoint,
  saveSafetensors,
  savePth,
  toHfConfig,
  toOfficial,
} from '../../checkpoint/index.js';

function writeAny(out: string, sd: Parameters<typeof savePth>[1], metadata: Record<string, string>, config?: Parameters<typeof saveSafetensors>[3]): void {
  if (/\.safetensors$/i.test(out)) saveSafetensors(out, sd, metadata, config);
  else if (/\.(pth|pt|bin)$/i.test(out)) savePth(out, sd);
  else throw new Error(`${out}: output must end in .safetensors, .pth, .pt or .bin`);
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a checkpoint between .pth and .safetensors and between official and HF key names')
    .argument('<in>', 'input checkpoint (.pth/.pt/.bin, .safetensors or HF folder)')
    .argument('<out>', 'output file: .safetensors or .pth/.pt/.bin')
    .option('--naming <naming>', 'output key names: official or hf', 'official')
    .option('--num-heads <n>', 'attention heads (needed when the embed dim is not a multiple of 64)', (v) => parseInt(v, 10))
    .option('--prefer <net>', 'in full training checkpoints: teacher or student', 'teacher')
    .option('--hf-config <path>', 'with --naming hf: also write the HF config.json here')
    .action(async (input: string, out: string, o: { naming: string; numHeads?: number; prefer: 'teacher' | 'student'; hfConfig?: string }) => {
      if (o.naming !== 'official' && o.naming !== 'hf') throw new Error(`--naming must be official or hf, got '${o.naming}'`);
      if (o.prefer !== 'teacher' && o.prefer !== 'student') throw new Error(`--prefer must be teacher or student, got '${o.prefer}'`);
      const ck = readCheckpoint(input, { prefer: o.prefer });
      const mapped = toOfficial(ck.stateDict);
      if (!mapped.family) {
        if (o.naming === 'hf') throw new Error(`${input}: holds only a DINO head, which has no HF naming; use --naming official`);
        writeAny(out, mapped.head!, {});
        process.stdout.write(`wrote DINO head (${mapped.head!.size} tensors, official names) to ${out}\n`);
        return;
      }
      const w = await loadBackboneWeights(input, { prefer: o.prefer, numHeads: o.numHeads });
      const sd = fromOfficial(w.stateDict, w.config, o.naming);
      writeAny(out, sd, {}, w.config);
      if (o.hfConfig) {
        if (o.naming !== 'hf') throw new Error('--hf-config needs --naming hf');
        writeFileSync(o.hfConfig, `${JSON.stringify(toHfConfig(w.config), null, 2)}\n`);
      }
      const dropped = w.head ? ` (the file's DINO head, ${w.head.size} tensors, was not written)` : '';
      process.stdout.write(`wrote ${w.family} backbone (${sd.size} tensors, ${o.naming} names, from ${w.naming}) to ${out}${dropped}\n`);
    });
}
