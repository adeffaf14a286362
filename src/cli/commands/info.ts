// `dinots info <checkpoint>`: what a checkpoint file holds — format, naming, family, detected config, parameter count
// and a key summary. Reads the file only; never needs a tensor backend.
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { detectConfig, describeValue, findFileConfig, readCheckpoint, toOfficial } from '../../checkpoint/index.js';
import type { StateDict } from '../../checkpoint/types.js';
import type { ViTConfig } from '../../models/config.js';

function count(sd: StateDict | undefined): number {
  let n = 0;
  for (const t of sd?.values() ?? []) n += t.data.length;
  return n;
}

/** Keys grouped by their first name segment ('blocks.0.*' → 'blocks'), with tensor counts. */
function keyGroups(sd: StateDict): Record<string, number> {
  const g: Record<string, number> = {};
  for (const k of sd.keys()) {
    const head = k.split('.')[0]!;
    g[head] = (g[head] ?? 0) + 1;
  }
  return g;
}

/** Every tensor of a file that holds no DINO / DINOv2 model: grouped by first name segment, name, dtype, shape. */
function printOther(ck: ReturnType<typeof readCheckpoint>, why: string, json: boolean): void {
  const tensors = [...ck.stateDict].map(([name, t]) => ({ name, dtype: t.sourceDtype ?? t.dtype, shape: t.shape }));
  const parameters = count(ck.stateDict);
  if (json) {
    process.stdout.write(`${JSON.stringify({ path: ck.path, bytes: statSync(ck.path).size, format: ck.format, family: null, recognised: false, reason: why, parameters, tensors }, null, 2)}\n`);
    return;
  }
  const groups = new Map<string, typeof tensors>();
  for (const t of tensors) {
    const g = t.name.split('.')[0]!;
    groups.set(g, [...(groups.get(g) ?? []), t]);
  }
  const lines = [
    `${ck.path} (${(statSync(ck.path).size / 2 ** 20).toFixed(2)} MiB)`,
    `  format      ${ck.format}${ck.extractedFrom.length ? `, state dict from '${ck.extractedFrom.join('.')}'` : ''}`,
    `  family      none recognised: this is not a DINO or DINOv2 backbone or head (${why.split(';')[0]})`,
    `  tensors     ${tensors.length}, ${parameters.toLocaleString('en-US')} values`,
  ];
  for (const [g, ts] of groups) {
    lines.push(`  ${g} (${ts.length})`);
    for (const t of ts) lines.push(`    ${t.name}  ${t.dtype} [${t.shape.join(', ')}]`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function register(program: Command): void {
  program
    .command('info')
    .description('show what a checkpoint holds (.pth/.pt/.bin zip or .safetensors; official, HF or training names)')
    .argument('<checkpoint>', 'checkpoint file or HF model folder')
    .option('--json', 'print one JSON object')
    .option('--num-heads <n>', 'attention heads (needed when the embed dim is not a multiple of 64)', (v) => parseInt(v, 10))
    .option('--prefer <net>', 'in full training checkpoints: teacher or student', 'teacher')
    .action((path: string, o: { json?: boolean; numHeads?: number; prefer: 'teacher' | 'student' }) => {
      if (o.prefer !== 'teacher' && o.prefer !== 'student') throw new Error(`--prefer must be teacher or student, got '${o.prefer}'`);
      const ck = readCheckpoint(path, { prefer: o.prefer });
      let official: ReturnType<typeof toOfficial>;
      try {
        official = toOfficial(ck.stateDict);
      } catch (e) {
        // Not a DINO / DINOv2 model: say so, and show what the file holds instead.
        printOther(ck, (e as Error).message, Boolean(o.json));
        return;
      }
      let config: ViTConfig | null = null;
      let configError: string | null = null;
      if (official.family) {
        try {
          config = detectConfig(official.stateDict, { numHeads: o.numHeads, fileConfig: findFileConfig(ck)?.config, naming: official.naming, source: ck.path });
        } catch (e) {
          configError = (e as Error).message;
        }
      }
      const topLevel =
        ck.tree instanceof Map ? Object.fromEntries([...ck.tree].slice(0, 30).map(([k, v]) => [String(k), describeValue(v)])) : undefined;
      const report = {
        path: ck.path,
        bytes: statSync(ck.path).size,
        format: ck.format,
        naming: official.naming,
        family: official.family,
        stateDictFrom: ck.extractedFrom.join('.') || '(top level)',
        tensors: ck.stateDict.size,
        parameters: { backbone: count(official.stateDict), head: count(official.head), file: count(ck.stateDict) },
        dtypes: [...new Set([...ck.stateDict.values()].map((t) => t.sourceDtype ?? t.dtype))],
        config,
        configError,
        backboneKeys: keyGroups(official.stateDict),
        headKeys: official.head ? [...official.head].map(([k, t]) => `${k} [${t.shape}]`) : undefined,
        ignoredKeys: official.ignored,
        notes: official.notes,
        metadata: ck.format === 'safetensors' ? ck.metadata : undefined,
        topLevel,
      };
      if (o.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const lines = [
        `${report.path} (${(report.bytes / 2 ** 20).toFixed(2)} MiB)`,
        `  format      ${report.format}${ck.extractedFrom.length ? `, state dict from '${report.stateDictFrom}'` : ''}`,
        `  naming      ${report.naming}`,
        `  family      ${report.family ?? '(no backbone)'}`,
        `  tensors     ${report.tensors} (${report.dtypes.join(', ')})`,
        `  parameters  backbone ${report.parameters.backbone.toLocaleString('en-US')}` +
          (official.head ? `, head ${report.parameters.head.toLocaleString('en-US')}` : ''),
      ];
      if (config)
        lines.push(
          `  config      D=${config.embedDim} depth=${config.depth} heads=${config.numHeads} patch=${config.patchSize} img=${config.imgSize} ` +
            `mlp=${config.ffnLayer}x${config.mlpRatio} layerscale=${config.initValues ?? 'none'} registers=${config.numRegisterTokens} ln_eps=${config.layerNormEps}`,
        );
      if (configError) lines.push(`  config      not detected: ${configError}`);
      if (Object.keys(report.backboneKeys).length)
        lines.push(`  backbone    ${Object.entries(report.backboneKeys).map(([k, n]) => `${k}(${n})`).join(' ')}`);
      if (report.headKeys) lines.push(`  head        ${report.headKeys.join(', ')}`);
      if (report.ignoredKeys.length) lines.push(`  ignored     ${report.ignoredKeys.slice(0, 10).join(', ')}${report.ignoredKeys.length > 10 ? ', ...' : ''}`);
      for (const n of report.notes) lines.push(`  note        ${n}`);
      if (topLevel && ck.extractedFrom.length) lines.push(`  top level   ${Object.entries(topLevel).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
      if (report.metadata && Object.keys(report.metadata).length)
        lines.push(`  metadata    ${Object.keys(report.metadata).join(', ')}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
