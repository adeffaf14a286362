// Prints the table of a learning sweep (bench/learning_sweep.sh): per setting, each seed's full-split figures.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] ?? 'runs/sweep';
const cols = ['teacher CLS', 'teacher CLS+avgpool', 'student CLS', 'student CLS+avgpool', 'raw pixels'];
console.log(`| setting-seed | steps | img/s | ${cols.join(' | ')} | linear | attention J (init -> end) |`);
console.log(`|---|---|---|${cols.map(() => '---').join('|')}|---|---|`);
for (const d of readdirSync(out).sort()) {
  const f = join(out, d, 'summary.json');
  if (!existsSync(f)) continue;
  const s = JSON.parse(readFileSync(f, 'utf8'));
  const k = s.full_knn_top1 ?? {};
  const j = (v) => (typeof v === 'number' ? v.toFixed(3) : 'n/a');
  console.log(`| ${d} | ${s.steps} | ${s.images_per_s.toFixed(0)} | ${cols.map((c) => (k[c] ?? NaN).toFixed(2)).join(' | ')} | ${s.linear_probe ? s.linear_probe.top1.toFixed(2) : 'n/a'} | ${j(s.attention_jaccard_initial)} -> ${j(s.attention_jaccard_final)} |`);
}
