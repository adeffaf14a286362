// Interop with real PyTorch (fails, naming the package, without a python3 that has torch: the README installs it): files torch.save wrote with views, offsets,
// shared storages, fp16/bf16 and a DINO-style full checkpoint; and our .pth read back by torch.load and loaded
// with load_state_dict(strict=True).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PyObject, readCheckpoint, readPth, savePth, toOfficial } from '../../src/checkpoint/index.js';
import type { StateDict } from '../../src/checkpoint/types.js';
import { CKPTS, diffStateDicts, runPython, tempDir, torchPython } from './helpers.js';

const py = torchPython();
// Not a skip: python3-torch is part of the README's install line, so a machine without it is set up wrong.
before(() => assert.ok(py, "no python3 that can import torch: install Debian's python3-torch, as the README's install line does"));

const MAKE = String.raw`
import argparse, collections, sys, torch
out = sys.argv[1]
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
sd = collections.OrderedDict()
sd['base'] = base
sd['row2'] = base[2]
sd['colT'] = base.t()
sd['slice'] = base[1:3, ::2]
sd['expand'] = torch.tensor([7.0]).expand(3)
sd['fp16'] = torch.tensor([1.0, -0.5, 65504, 2**-24], dtype=torch.float16)
sd['fp16_view'] = sd['fp16'][1:]
sd['bf16'] = torch.tensor([1.0, -3.140625, 1e30], dtype=torch.bfloat16)
sd['i64'] = torch.tensor([-1, 2**40])
sd['mask'] = torch.tensor([True, False, True])
sd['f64'] = torch.tensor([3.5], dtype=torch.float64)
sd['scalar'] = torch.tensor(2.5)
sd['param'] = torch.nn.Parameter(torch.ones(2))
torch.save(sd, out + '/views.pth')

bb = torch.load(sys.argv[2])
head = torch.load(sys.argv[3])
teacher = collections.OrderedDict([('backbone.' + k, v) for k, v in bb.items()] + [('head.' + k, v) for k, v in head.items()])
student = collections.OrderedDict([('module.backbone.' + k, v * 2) for k, v in bb.items()] + [('module.head.' + k, v * 2) for k, v in head.items()])
args = argparse.Namespace(arch='vit_tiny', patch_size=8, out_dim=128, lr=0.0005, norm_last_layer=True)
torch.save({'student': student, 'teacher': teacher, 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'params': [0, 1]}]},
            'epoch': 3, 'args': args, 'dino_loss': {'center': torch.zeros(1, 128)}}, out + '/full.pth')
`;

// argv: pairs (our file, torch's file); prints 'OK <n>' per pair
const CHECK = String.raw`
import sys, torch
def check(ours, theirs):
  sd = torch.load(ours)
  assert type(sd).__name__ == 'OrderedDict', type(sd)
  ref = torch.load(theirs)
  assert list(sd.keys()) == list(ref.keys()), (list(sd.keys()), list(ref.keys()))
  for k in ref:
      assert sd[k].dtype == ref[k].dtype and sd[k].shape == ref[k].shape, k
      assert torch.equal(sd[k], ref[k].contiguous()), k
      assert sd[k].is_contiguous(), k
  root = torch.nn.Module()
  for k, v in sd.items():
      *path, leaf = k.split('.')
      m = root
      for p in path:
          if not hasattr(m, p):
              m.add_module(p, torch.nn.Module())
          m = getattr(m, p)
      m.register_buffer(leaf, torch.zeros_like(v))
  root.load_state_dict(sd, strict=True)
  try:
      torch.load(ours, weights_only=True)
  except TypeError:
      pass  # torch without weights_only
  print('OK', len(sd))
for ours, theirs in zip(sys.argv[1::2], sys.argv[2::2]):
    check(ours, theirs)
`;

function values(sd: StateDict, k: string): number[] {
  return Array.from(sd.get(k)!.data as ArrayLike<number>, Number);
}

test('torch interop', async (t) => {
  const dir = tempDir(t);
  runPython(py!, MAKE, [dir, join(CKPTS, 'dino_tiny.pth'), join(CKPTS, 'dino_head.pth')]);

  await t.test('views, offsets, shared storages, fp16/bf16/int64/bool made by torch', () => {
    const sd = readCheckpoint(join(dir, 'views.pth')).stateDict;
    const base = Array.from({ length: 24 }, (_, i) => i);
    assert.deepEqual(values(sd, 'base'), base);
    assert.deepEqual(values(sd, 'row2'), [12, 13, 14, 15, 16, 17]);
    assert.deepEqual(sd.get('colT')!.shape, [6, 4]);
    assert.deepEqual(values(sd, 'colT').slice(0, 6), [0, 6, 12, 18, 1, 7]);
    assert.deepEqual(values(sd, 'slice'), [6, 8, 10, 12, 14, 16]);
    assert.deepEqual(values(sd, 'expand'), [7, 7, 7]);
    assert.deepEqual(values(sd, 'fp16'), [1, -0.5, 65504, 2 ** -24]);
    assert.equal(sd.get('fp16')!.sourceDtype, 'float16');
    assert.deepEqual(values(sd, 'fp16_view'), [-0.5, 65504, 2 ** -24]);
    assert.deepEqual(values(sd, 'bf16').slice(0, 2), [1, -3.140625]);
    assert.equal(sd.get('bf16')!.sourceDtype, 'bfloat16');
    assert.ok(Math.abs(values(sd, 'bf16')[2]! / 1e30 - 1) < 1e-2);
    assert.deepEqual([...(sd.get('i64')!.data as BigInt64Array)], [-1n, 1n << 40n]);
    assert.deepEqual(values(sd, 'mask'), [1, 0, 1]);
    assert.equal(sd.get('mask')!.dtype, 'bool');
    assert.deepEqual(values(sd, 'f64'), [3.5]);
    assert.deepEqual(sd.get('scalar')!.shape, []);
    assert.deepEqual(values(sd, 'param'), [1, 1]);
    // a view must not alias the storage another tensor owns
    (sd.get('row2')!.data as Float32Array)[0] = -1;
    assert.equal(values(sd, 'base')[12], 12);
  });

  await t.test('DINO full checkpoint: teacher by default, student on request, args stays inert', () => {
    const file = join(dir, 'full.pth');
    const { value } = readPth(file);
    const top = value as Map<string, unknown>;
    const args = top.get('args');
    assert.ok(args instanceof PyObject);
    assert.equal(args.className, 'argparse.Namespace');
    assert.equal((args.state as Map<string, unknown>).get('arch'), 'vit_tiny');
    assert.equal(top.get('epoch'), 3);
    const official = readCheckpoint(join(CKPTS, 'dino_tiny.pth')).stateDict;
    const head = readCheckpoint(join(CKPTS, 'dino_head.pth')).stateDict;
    const teacher = readCheckpoint(file);
    assert.deepEqual(teacher.extractedFrom, ['teacher']);
    const t1 = toOfficial(teacher.stateDict);
    assert.equal(t1.naming, 'training');
    assert.deepEqual(diffStateDicts(t1.stateDict, official), []);
    assert.deepEqual(diffStateDicts(t1.head!, head), []);
    const student = readCheckpoint(file, { prefer: 'student' });
    const s1 = toOfficial(student.stateDict);
    assert.deepEqual([...s1.stateDict.keys()], [...official.keys()]);
    const k = 'blocks.1.mlp.fc2.weight';
    assert.deepEqual(values(s1.stateDict, k), values(official, k).map((x) => Math.fround(2 * x)));
  });

  await t.test('our .pth: torch.load reads it and load_state_dict(strict=True) accepts it', () => {
    const views = readCheckpoint(join(dir, 'views.pth')).stateDict;
    savePth(join(dir, 'ours_views.pth'), views);
    const fixture = join(CKPTS, 'dinov2_tiny_reg4_ls.pth');
    savePth(join(dir, 'ours_model.pth'), readCheckpoint(fixture).stateDict);
    const out = runPython(py!, CHECK, [join(dir, 'ours_views.pth'), join(dir, 'views.pth'), join(dir, 'ours_model.pth'), fixture]);
    assert.deepEqual(out.trim().split('\n'), ['OK 13', 'OK 36']);
  });
});
