// Worker-thread entry of the data loaders. Node 20 does not apply tsx's ESM loader hooks inside worker threads, so
// this registers tsx's CommonJS hooks (in-thread) and loads the TypeScript worker through them. Works whether the
// main program runs under `npx tsx` or `node --import tsx` (including `node --import tsx --test`).
require('tsx/cjs/api').register();
require('./loader_worker.ts');
