import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { colormapTable } from '../../src/eval/colormaps.js';
import { blend, chwToImage, colorize, encodePng, grid, maskOverlay, resizeBilinear, resizeNearest, writeHtmlPage } from '../../src/eval/pictures.js';

test('nearest upsampling by the patch size repeats each value in a block (F.interpolate nearest)', () => {
  assert.deepEqual(Array.from(resizeNearest([1, 2, 3, 4], 2, 2, 4, 4)), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  // bilinear with half-pixel centres: 2 -> 4 gives 1, 1.25, 1.75, 2
  assert.deepEqual(Array.from(resizeBilinear([1, 2], 1, 2, 1, 4)), [1, 1.25, 1.75, 2]);
});

test('colormaps: viridis ends, gray, value range', () => {
  const v = colormapTable('viridis');
  assert.deepEqual(Array.from(v.subarray(0, 3)), [68, 1, 84]); // #440154
  assert.deepEqual(Array.from(v.subarray(765, 768)), [253, 231, 37]); // #fde725
  const img = colorize([0, 5, 10], 3, 1, { colormap: 'gray' });
  assert.deepEqual(Array.from(img.data), [0, 0, 0, 128, 128, 128, 255, 255, 255]);
});

test('overlays, grids and PNG encoding round-trip', async () => {
  // ImageNet-normalised zeros are the mean colour
  const base = chwToImage(new Float32Array(3 * 2 * 2), 2, 2);
  assert.deepEqual(Array.from(base.data.subarray(0, 3)), [124, 116, 104]);
  const red = { width: 2, height: 2, data: Uint8Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 255 : 0)) };
  assert.deepEqual(Array.from(blend(base, red, 0.5).data.subarray(0, 3)), [190, 58, 52]);
  const masked = maskOverlay(base, [1, 0, 0, 0], [0, 255, 0]);
  assert.deepEqual(Array.from(masked.data.subarray(0, 6)), [0, 255, 0, 124, 116, 104]); // edge pixel solid, outside unchanged
  const g = grid([base, red, red], 2, 1);
  assert.deepEqual([g.width, g.height], [7, 7]);
  const { data, info } = await sharp(await encodePng(g)).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [7, 7, 3]);
  assert.deepEqual(new Uint8Array(data), g.data);
});

test('the HTML page links pictures relative to itself and escapes text', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dinots-html-'));
  try {
    writeHtmlPage(join(dir, 'out', 'index.html'), 'a <b>', [{ title: 't', items: [{ src: join(dir, 'out', 'sub', 'x.png'), caption: '"c"' }] }]);
    const html = readFileSync(join(dir, 'out', 'index.html'), 'utf8');
    assert.match(html, /src="sub\/x.png"/);
    assert.match(html, /a &lt;b&gt;/);
    assert.match(html, /&quot;c&quot;/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
